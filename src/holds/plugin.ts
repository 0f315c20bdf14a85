import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { holdsGraphql } from './graphql.js'
import { holdRoutes } from './routes.js'
import { HoldsService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    holds: HoldsService
  }
}

/** Legal holds over REST and GraphQL: placed and lifted by admins, read by everyone with a role. */
export default fp<FeatureOptions>(
  async (app) => {
    app.decorate('holds', new HoldsService(app.db))
    await app.register(holdRoutes)
    extendGraph(
      app,
      holdsGraphql(() => app.holds),
    )
  },
  { name: 'holds', dependencies: ['db', 'graphql'] },
)
