import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { nextSteps } from '../onboarding/next-steps.js'
import { healthRoutes } from './routes.js'

/** Liveness and readiness, with what to do next while nothing is configured. */
export default fp<FeatureOptions>(
  async (app, { config }) => {
    await app.register(healthRoutes, {
      probeTimeoutMs: config.browse.probeTimeoutMs,
      readyTimeoutMs: config.database.readyTimeoutMs,
      nextSteps: nextSteps(config),
    })
  },
  { name: 'health', dependencies: ['db', 'registries'] },
)
