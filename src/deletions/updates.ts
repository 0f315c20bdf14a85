import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import { listenWhileOpen } from '../db/listen.js'
import { SYSTEM_PRINCIPAL } from '../lib/system.js'
import { deletionTopic } from './graphql.js'

/** The channel a worker notifies when a request's state or progress changes. */
const DELETIONS_CHANNEL = 'regent_deletions'

/** Tells listeners on every replica that a request changed (its id is the payload). */
export async function notifyDeletionChanged(db: pg.Pool, id: string): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [DELETIONS_CHANNEL, id])
}

/**
 * Bridges worker progress to `deletionUpdated` subscribers on every replica: workers NOTIFY the
 * request id (whichever replica runs the job), each replica LISTENs and publishes the fresh view to
 * its own subscribers.
 */
export const deletionUpdates = fp(
  async (app: FastifyInstance) => {
    listenWhileOpen(app, DELETIONS_CHANNEL, async (id) => {
      const view = await app.deletions.get(SYSTEM_PRINCIPAL, id)
      await app.graphql.pubsub.publish({ topic: deletionTopic(id), payload: { deletionUpdated: view } })
    })
  },
  { name: 'deletion-updates', dependencies: ['deletions', 'graphql'] },
)
