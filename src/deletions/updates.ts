import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { listenWhileOpen } from '../db/listen.js'
import { deletionTopic } from './graphql.js'

/** The channel a worker notifies when a request's state or progress changes. */
export const DELETIONS_CHANNEL = 'regent_deletions'

/**
 * Bridges worker progress to `deletionUpdated` subscribers on every replica: workers NOTIFY the
 * request id (whichever replica runs the job), each replica LISTENs and publishes the fresh view to
 * its own subscribers.
 */
export default fp(
  async (app: FastifyInstance) => {
    listenWhileOpen(app, DELETIONS_CHANNEL, async (id) => {
      const view = await app.deletions.get(
        { subject: 'regent', teams: [], roles: ['admin'], channel: 'system' },
        id,
      )
      await app.graphql.pubsub.publish({ topic: deletionTopic(id), payload: { deletionUpdated: view } })
    })
  },
  { name: 'deletion-updates', dependencies: ['deletions', 'graphql'] },
)
