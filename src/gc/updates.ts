import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { listenWhileOpen } from '../db/listen.js'
import { gcRunTopic } from './graphql.js'
import { GC_CHANNEL } from './queue.js'

/**
 * Bridges GC progress to `gcRunUpdated` subscribers on every replica: the worker running a run
 * NOTIFYs its id on GC_CHANNEL after each step, each replica LISTENs and publishes the fresh run
 * to its own subscribers.
 */
export default fp(
  async (app: FastifyInstance) => {
    listenWhileOpen(app, GC_CHANNEL, async (id) => {
      const run = await app.gc.get({ subject: 'regent', teams: [], roles: ['admin'], channel: 'system' }, id)
      await app.graphql.pubsub.publish({ topic: gcRunTopic(id), payload: { gcRunUpdated: run } })
    })
  },
  { name: 'gc-updates', dependencies: ['gc', 'graphql'] },
)
