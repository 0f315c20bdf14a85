import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { secretEnv } from '../lib/secrets.js'
import { registryEventRoutes } from './routes.js'

/** The endpoint registries post their notifications to (push and pull times for retention). */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    await app.register(registryEventRoutes, {
      registries: config.registries,
      rateLimit: config.publicRoutes.rateLimit,
      env: secretEnv(overrides.env),
    })
  },
  { name: 'registry-events', dependencies: ['db', 'metrics', 'refusals'] },
)
