import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import pg from 'pg'
import { gcRunTopic } from './graphql.js'
import { GC_CHANNEL } from './queue.js'

/**
 * Bridges GC progress to `gcRunUpdated` subscribers on every replica: the worker running a run
 * NOTIFYs its id on GC_CHANNEL after each step, each replica LISTENs and publishes the fresh run
 * to its own subscribers. A dropped LISTEN connection is reopened; an update missed meanwhile is
 * made good by the next, which carries the whole run.
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
        if (message.channel !== GC_CHANNEL || !message.payload) return
        publish(message.payload).catch((err) => app.log.warn({ err }, 'GC run update not published'))
      })
      await client.connect()
      await client.query(`LISTEN ${GC_CHANNEL}`)
    }
    const publish = async (id: string) => {
      const run = await app.gc.get({ subject: 'regent', teams: [], roles: ['admin'], channel: 'system' }, id)
      await app.graphql.pubsub.publish({ topic: gcRunTopic(id), payload: { gcRunUpdated: run } })
    }
    app.addHook('onReady', connect)
    app.addHook('onClose', async () => {
      closing = true
      await client?.end().catch(() => {})
    })
  },
  { name: 'gc-updates', dependencies: ['gc', 'graphql'] },
)
