import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type pg from 'pg'
import { auditRoutes } from './audit/routes.js'
import authPlugin from './auth/plugin.js'
import { authRoutes } from './auth/routes.js'
import { slackRoutes } from './chatops/routes.js'
import type { Config } from './config.js'
import dbPlugin from './db/plugin.js'
import {
  deletionHandler,
  EXECUTE_DELETION,
  type ExecutionHooks,
  onExecutionFailed,
} from './deletions/execute.js'
import { deletionsGraphql } from './deletions/graphql.js'
import deletionsPlugin from './deletions/plugin.js'
import { deletionRoutes } from './deletions/routes.js'
import deletionUpdates, { DELETIONS_CHANNEL } from './deletions/updates.js'
import { errors } from './errors.js'
import { gcGraphql } from './gc/graphql.js'
import { deletionGcHooks, GC_CHANNEL, GC_RUN, gcHandler, onGcJobFailed } from './gc/index.js'
import gcPlugin from './gc/plugin.js'
import { gcRoutes } from './gc/routes.js'
import gcUpdates from './gc/updates.js'
import { holdRoutes } from './governance/holds-routes.js'
import graphql from './graphql/plugin.js'
import { healthRoutes } from './health/routes.js'
import { HOUSEKEEPING_PURGE, housekeepingPlugin } from './housekeeping/index.js'
import errorHandler, { clientErrorHandler, frameworkErrors, MAX_PARAM_LENGTH } from './http/error-handler.js'
import inputGuard from './http/input-guard.js'
import openapi from './http/openapi.js'
import refusals from './http/refusals.js'
import { NonRetryableJobError } from './jobs/index.js'
import workerPlugin from './jobs/plugin.js'
import { jobRoutes } from './jobs/routes.js'
import { AJV_OPTIONS } from './lib/validate.js'
import metrics from './metrics/plugin.js'
import {
  DELIVER_NOTIFICATION,
  notificationRoutes,
  notificationsGraphql,
  onDeliveryFailed,
} from './notifications/index.js'
import notificationsPlugin from './notifications/plugin.js'
import { nextSteps } from './onboarding/next-steps.js'
import { onboardingRoutes } from './onboarding/routes.js'
import { registriesGraphql } from './registries/graphql.js'
import registriesPlugin from './registries/plugin.js'
import { registryRoutes } from './registries/routes.js'
import { registryEventRoutes } from './registry-events/routes.js'
import { retentionGraphql } from './retention/graphql.js'
import retentionPlugin from './retention/plugin.js'
import { retentionRoutes } from './retention/routes.js'
import { RETENTION_WARN } from './retention/scheduler.js'
import { parsePolicyInput } from './retention/schemas.js'
import { RETENTION_RUN } from './retention/service.js'
import uiPlugin from './ui/plugin.js'
import { USAGE_SYNC, usageGraphql, usageRoutes } from './usage/index.js'
import usagePlugin from './usage/plugin.js'

export interface AppOverrides {
  /** A pino logger, logger options, or false. Default: no logging (tests); server.ts passes its own. */
  logger?: FastifyServerOptions['logger']
  loggerInstance?: FastifyServerOptions['loggerInstance']
  /** Use this pool instead of opening one from config.databaseUrl; the caller closes it. */
  pool?: pg.Pool
  /** Apply migrations while booting (default true). */
  migrate?: boolean
  /** Environment for registry credentials named in config (default process.env). */
  env?: Record<string, string | undefined>
  /**
   * false: no job worker and no LISTEN connections, for tools that only need the routes (the
   * OpenAPI generator builds the app without a database). Default true.
   */
  background?: boolean
  /** Test seams around each registry DELETE of an execution (crash tests). */
  executionHooks?: ExecutionHooks
}

/** Request ids from callers are kept so a chatops bot can follow its call through our logs. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Paths, headers and fields that may hold credentials: never written to logs. */
export const LOG_REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'req.headers["x-slack-signature"]',
  'req.headers["x-regent-event-secret"]',
  'headers.authorization',
  '*.password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.signingSecret',
  '*.botToken',
]

/** A token in a query string (only a WebSocket client sends one) is cut out of logged URLs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, '$1[redacted]')
}

/** Fastify's request serializer, with the URL redacted. */
export const LOG_SERIALIZERS = {
  req(request: {
    method: string
    url: string
    host?: string
    ip?: string
    socket?: { remotePort?: number }
  }) {
    return {
      method: request.method,
      url: redactUrl(request.url),
      host: request.host,
      remoteAddress: request.ip,
      remotePort: request.socket?.remotePort,
    }
  },
}

/**
 * Builds the whole service as one Fastify instance. It never listens: server.ts does that, and tests
 * call `inject`. Plugins register in dependency order: database, then cross-cutting HTTP plugins,
 * then the feature routes.
 */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<FastifyInstance> {
  const logger = overrides.logger ?? false
  const app = Fastify({
    // Whoever made the logger, requests are logged through the redacting serializer.
    ...(overrides.loggerInstance
      ? { loggerInstance: overrides.loggerInstance.child({}, { serializers: LOG_SERIALIZERS }) }
      : {
          logger:
            logger && typeof logger === 'object'
              ? { ...logger, serializers: { ...logger.serializers, ...LOG_SERIALIZERS } }
              : logger,
        }),
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    trustProxy: config.trustProxy,
    bodyLimit: 1024 * 1024,
    // A repository name is one URL-encoded path segment of up to 255 characters.
    maxParamLength: MAX_PARAM_LENGTH,
    ajv: { customOptions: AJV_OPTIONS },
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  // While closing, answers to requests still in flight ask the client to close its connection;
  // otherwise a keep-alive socket would hold close() open until it times out (72 s by default).
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })

  await app.register(errorHandler)
  await app.register(inputGuard)
  await app.register(authPlugin, { config })
  await app.register(dbPlugin, {
    config,
    ...(overrides.pool ? { pool: overrides.pool } : {}),
    migrate: overrides.migrate ?? true,
  })
  await app.register(metrics)
  await app.register(refusals, { config })
  await app.register(registriesPlugin, { config, ...(overrides.env ? { env: overrides.env } : {}) })
  await app.register(notificationsPlugin, { config, ...(overrides.env ? { env: overrides.env } : {}) })
  const background = overrides.background !== false
  await app.register(usagePlugin, {
    config,
    schedules: background && config.worker,
    ...(overrides.env ? { env: overrides.env } : {}),
  })
  await app.register(deletionsPlugin, { config })
  await app.register(gcPlugin, { schedules: background })
  await app.register(retentionPlugin, { config, schedules: background })
  await app.register(housekeepingPlugin, { config, schedules: background })
  await app.register(workerPlugin, {
    config: background ? config : { ...config, worker: false },
    handlers: {
      [EXECUTE_DELETION]: deletionHandler({
        pool: app.db,
        registries: app.registries,
        browse: app.browse,
        governance: config.governance,
        repositoryConcurrency: config.deletions.repositoryConcurrency,
        waveSize: config.deletions.waveSize,
        usage: app.usage,
        ...(overrides.executionHooks ? { hooks: overrides.executionHooks } : {}),
        notify: async (id) => {
          await app.db.query('SELECT pg_notify($1, $2)', [DELETIONS_CHANNEL, id])
        },
        gc: deletionGcHooks({
          pool: app.db,
          registries: app.registries,
          retryAfterMs: Math.max(250, config.jobs.pollMs),
        }),
        announce: (client, row, type) => app.deletions.announce(client, row, type),
      }),
      [GC_RUN]: gcHandler({
        pool: app.db,
        registries: app.registries,
        ...(overrides.env ? { env: overrides.env } : {}),
        leaseMs: config.jobs.leaseMs,
        renewMs: config.jobs.heartbeatMs,
        pollMs: Math.max(100, Math.min(config.jobs.pollMs, 1000)),
        deletionKinds: [EXECUTE_DELETION],
        notify: async (id) => {
          await app.db.query('SELECT pg_notify($1, $2)', [GC_CHANNEL, id])
        },
        notifier: app.notifier,
      }),
      [RETENTION_RUN]: async (job) => app.retention.executeRun((job.payload as { runId: string }).runId),
      [RETENTION_WARN]: async (job) => {
        const { policyId, slot } = job.payload as { policyId: string; slot: string }
        return app.retention.warn(policyId, new Date(slot))
      },
      [DELIVER_NOTIFICATION]: app.notificationDelivery,
      [USAGE_SYNC]: async (job, ctx) => {
        const result = await app.usage.sync((job.payload as { source: string }).source, ctx.signal)
        // Recorded on the source already; the next slot is the retry.
        if (result.outcome === 'failed') throw new NonRetryableJobError(result.error ?? 'the sync failed')
        return result
      },
      [HOUSEKEEPING_PURGE]: async () => app.housekeeping.purge(),
    },
    onFailed: async (client, job) => {
      if (job.kind === EXECUTE_DELETION) {
        await onExecutionFailed(
          client,
          (job.payload as { deletionId: string }).deletionId,
          job.lastError,
          (db, row, type) => app.deletions.announce(db, row, type),
        )
      }
      if (job.kind === RETENTION_RUN)
        await app.retention.failRun(client, (job.payload as { runId: string }).runId, job.lastError)
      if (job.kind === GC_RUN) await onGcJobFailed(client, job, app.notifier)
      if (job.kind === DELIVER_NOTIFICATION) await onDeliveryFailed(client, job)
    },
  })
  await app.register(openapi)
  const steps = nextSteps(config)
  await app.register(healthRoutes, {
    probeTimeoutMs: config.browse.probeTimeoutMs,
    readyTimeoutMs: config.database.readyTimeoutMs,
    nextSteps: steps,
  })
  await app.register(onboardingRoutes, { graphiql: config.graphql.graphiql, nextSteps: steps })
  await app.register(authRoutes)
  await app.register(registryRoutes)
  await app.register(deletionRoutes)
  await app.register(holdRoutes)
  await app.register(auditRoutes)
  await app.register(jobRoutes, {
    visibility: {
      [EXECUTE_DELETION]: (principal, job) =>
        app.deletions.get(principal, (job.payload as { deletionId: string }).deletionId).then(
          () => true,
          () => false,
        ),
      // GC runs are listed for every role, so are the jobs running them.
      [GC_RUN]: async (principal) => principal.roles.length > 0,
      [RETENTION_RUN]: (principal, job) =>
        app.retention.runVisibleTo(principal, (job.payload as { runId: string }).runId),
      [RETENTION_WARN]: (principal, job) =>
        app.retention.policyVisibleTo(principal, (job.payload as { policyId: string }).policyId),
    },
  })
  await app.register(gcRoutes)
  await app.register(retentionRoutes)
  await app.register(registryEventRoutes, {
    registries: config.registries,
    rateLimit: config.publicRoutes.rateLimit,
    ...(overrides.env ? { env: overrides.env } : {}),
  })
  await app.register(slackRoutes, { config })
  await app.register(notificationRoutes)
  await app.register(uiPlugin, { config })
  await app.register(usageRoutes)
  await app.register(graphql, {
    config,
    modules: [
      registriesGraphql(() => app.browse),
      deletionsGraphql(() => app),
      gcGraphql(() => app.gc),
      retentionGraphql(() => app.retention, parsePolicyInput),
      notificationsGraphql(() => app.notifications),
      usageGraphql(
        () => app.usage,
        (message) => new errors.VALIDATION(message),
      ),
    ],
  })
  if (background) {
    await app.register(deletionUpdates)
    await app.register(gcUpdates)
  }

  return app
}
