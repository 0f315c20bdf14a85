import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { nextSteps } from './next-steps.js'
import { onboardingRoutes } from './routes.js'

/** `GET /`: where to go from here (the docs, the console, GraphQL) and what to do next. */
export default fp<FeatureOptions>(
  async (app, { config }) => {
    await app.register(onboardingRoutes, { graphiql: config.graphql.graphiql, nextSteps: nextSteps(config) })
  },
  { name: 'onboarding' },
)
