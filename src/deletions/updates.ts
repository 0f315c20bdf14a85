import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import pg from 'pg'
import { deletionTopic } from './graphql.js'

/** The channel a worker notifies when a request's state or progress changes. */
export const DELETIONS_CHANNEL = 'regent_deletions'

/**
 * Bridges worker progress to GraphQL subscribers on every replica: workers NOTIFY the request id
 * (whichever replica runs the job), each replica LISTENs and publishes the fresh view to its own
 * subscribers. A dropped LISTEN connection is reopened; updates sent meanwhile are missed, the
 * next one carries the whole state anyway.
 */
export default fp(
  async (app: FastifyInstance) => {
    let client: pg.Client | undefined
    let closing = false
    const connect = async (): Promise<void> => {
      client = new pg.Client(app.db.options)
      client.on('error', () => {})
      client.on('end', () => {
        if (!closing) setTimeout(() => connect().catch(() => {}), 1000).unref()
      })
      client.on('notification', (message) => {
        if (message.channel !== DELETIONS_CHANNEL || !message.payload) return
        publish(message.payload).catch((err) => app.log.warn({ err }, 'deletion update not published'))
      })
      await client.connect()
      await client.query(`LISTEN ${DELETIONS_CHANNEL}`)
    }
    const publish = async (id: string) => {
      const view = await app.deletions.get(
        { subject: 'regent', teams: [], roles: ['admin'], channel: 'system' },
        id,
      )
      await app.graphql.pubsub.publish({ topic: deletionTopic(id), payload: { deletionUpdated: view } })
    }
    app.addHook('onReady', connect)
    app.addHook('onClose', async () => {
      closing = true
      await client?.end().catch(() => {})
    })
  },
  { name: 'deletion-updates', dependencies: ['deletions', 'graphql'] },
)
