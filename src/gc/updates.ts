import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import { listenWhileOpen } from '../db/listen.js'
import { SYSTEM_PRINCIPAL } from '../lib/system.js'
import { gcRunTopic } from './graphql.js'
import { GC_CHANNEL } from './queue.js'

/** Tells listeners on every replica that a run changed (its id is the payload). */
export async function notifyGcRunChanged(db: pg.Pool, id: string): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [GC_CHANNEL, id])
}

/**
 * Bridges GC progress to `gcRunUpdated` subscribers on every replica: the worker running a run
 * NOTIFYs its id on GC_CHANNEL after each step, each replica LISTENs and publishes the fresh run
 * to its own subscribers.
 */
export const gcUpdates = fp(
  async (app: FastifyInstance) => {
    listenWhileOpen(app, GC_CHANNEL, async (id) => {
      const run = await app.gc.get(SYSTEM_PRINCIPAL, id)
      await app.graphql.pubsub.publish({ topic: gcRunTopic(id), payload: { gcRunUpdated: run } })
    })
  },
  { name: 'gc-updates', dependencies: ['gc', 'graphql'] },
)
