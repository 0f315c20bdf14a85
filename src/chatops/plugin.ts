import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { slackRoutes } from './routes.js'

/** Chatops: Slack's slash commands and approval buttons, over the same services as REST. */
export default fp<FeatureOptions>(
  async (app, { config }) => {
    await app.register(slackRoutes, { config })
  },
  { name: 'chatops', dependencies: ['db', 'refusals', 'deletions', 'registries'] },
)
