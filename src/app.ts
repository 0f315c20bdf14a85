import type { FastifyInstance, FastifyPluginCallback } from 'fastify'
import type { AppOverrides, FeatureOptions } from './app-options.js'
import auditPlugin from './audit/plugin.js'
import authPlugin from './auth/plugin.js'
import chatopsPlugin from './chatops/plugin.js'
import type { Config } from './config.js'
import dbPlugin from './db/plugin.js'
import deletionsPlugin from './deletions/plugin.js'
import gcPlugin from './gc/plugin.js'
import graphqlPlugin from './graphql/plugin.js'
import healthPlugin from './health/plugin.js'
import holdsPlugin from './holds/plugin.js'
import housekeepingPlugin from './housekeeping/plugin.js'
import errorHandler from './http/error-handler.js'
import { createFastify } from './http/fastify.js'
import inputGuard from './http/input-guard.js'
import openapi from './http/openapi.js'
import refusals from './http/refusals.js'
import jobsPlugin from './jobs/plugin.js'
import metrics from './metrics/plugin.js'
import notificationsPlugin from './notifications/plugin.js'
import onboardingPlugin from './onboarding/plugin.js'
import registriesPlugin from './registries/plugin.js'
import registryEventsPlugin from './registry-events/plugin.js'
import retentionPlugin from './retention/plugin.js'
import uiPlugin from './ui/plugin.js'
import usagePlugin from './usage/plugin.js'

export type { AppOverrides } from './app-options.js'
export { LOG_REDACT } from './http/fastify.js'

/**
 * The service, as a list of plugins in the order their dependencies need: the HTTP plumbing and the
 * contract (which must see every route), authentication, the database, the job queue and the
 * GraphQL root every feature extends, then the features. Each feature brings its own routes,
 * GraphQL, job kinds, schedules and bridges.
 */
export const PLUGINS: readonly FastifyPluginCallback<FeatureOptions>[] = [
  errorHandler,
  inputGuard,
  openapi,
  authPlugin,
  dbPlugin,
  metrics,
  refusals,
  jobsPlugin,
  graphqlPlugin,
  registriesPlugin,
  healthPlugin,
  onboardingPlugin,
  usagePlugin,
  notificationsPlugin,
  holdsPlugin,
  deletionsPlugin,
  auditPlugin,
  gcPlugin,
  retentionPlugin,
  registryEventsPlugin,
  chatopsPlugin,
  housekeepingPlugin,
  uiPlugin,
]

/** Builds the whole service as one Fastify instance. It never listens: server.ts does, tests inject. */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<FastifyInstance> {
  const app = createFastify(config, overrides)
  for (const plugin of PLUGINS) await app.register(plugin, { config, overrides })
  return app
}
