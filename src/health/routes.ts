import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import pg from 'pg'
import { Type } from 'typebox'
import { databaseVersion, latestMigrationVersion } from '../db/migrate.js'
import { keepAlive } from '../db/pool.js'

const CheckSchema = Type.Object({
  ok: Type.Boolean(),
  detail: Type.Optional(Type.String()),
})

const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('unready')]),
  checks: Type.Object({
    database: Type.Intersect([
      CheckSchema,
      Type.Object({ migrationVersion: Type.Integer(), expectedVersion: Type.Integer() }),
    ]),
    registries: Type.Array(
      Type.Object({
        name: Type.String(),
        status: Type.Union([Type.Literal('ok'), Type.Literal('unreachable'), Type.Literal('unknown')]),
      }),
    ),
  }),
  nextSteps: Type.Optional(
    Type.Array(Type.String(), { description: 'What to configure next; absent once a registry is' }),
  ),
})

/**
 * Liveness says the process runs; readiness says it can serve (database reachable, schema current).
 * Readiness asks the database over a connection of its own with a short timeout: behind the
 * request pool it would wait for a free connection under load, and while the database is away it
 * would wait for the pool's connection timeout, where an orchestrator needs a quick 503.
 */
export const healthRoutes: FastifyPluginAsyncTypebox<{
  probeTimeoutMs: number
  readyTimeoutMs: number
  nextSteps: string[]
}> = async (app, { probeTimeoutMs, readyTimeoutMs, nextSteps }) => {
  const expectedVersion = latestMigrationVersion()
  const probe = new pg.Pool({
    ...app.db.options,
    max: 1,
    connectionTimeoutMillis: readyTimeoutMs,
    query_timeout: readyTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'regent-readyz',
  })
  keepAlive(probe, app.log)
  app.addHook('onClose', async () => probe.end())

  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process is up',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        summary: 'Readiness: database reachable and migrations current',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (_request, reply) => {
      let database: { ok: boolean; detail?: string; migrationVersion: number; expectedVersion: number }
      try {
        const migrationVersion = await withinMs(databaseVersion(probe), readyTimeoutMs)
        const current = migrationVersion === expectedVersion
        database = {
          ok: current,
          migrationVersion,
          expectedVersion,
          ...(current
            ? {}
            : { detail: `schema at ${migrationVersion}, this build needs ${expectedVersion}` }),
        }
      } catch {
        database = { ok: false, detail: 'database unreachable', migrationVersion: 0, expectedVersion }
      }
      // A registry that is down degrades the report but leaves the process ready: the others and
      // everything that does not touch that registry still work.
      const registries = await Promise.all(
        app.registries.list().map(async ({ config: { name } }) => {
          const caps = await app.registries.capabilities(name, probeTimeoutMs)
          const status = caps === undefined ? 'unknown' : caps.reachable ? 'ok' : 'unreachable'
          return { name, status: status as 'ok' | 'unreachable' | 'unknown' }
        }),
      )
      const status = !database.ok
        ? 'unready'
        : registries.every((r) => r.status === 'ok')
          ? 'ready'
          : 'degraded'
      return reply
        .code(database.ok ? 200 : 503)
        .send({ status, checks: { database, registries }, ...(nextSteps.length > 0 ? { nextSteps } : {}) })
    },
  )
}

/** The promise's value, or a rejection once `ms` have passed (the probe's own timeouts are the first guard). */
function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
