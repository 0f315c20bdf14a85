import type { FastifyInstance } from 'fastify'
import pg from 'pg'

/**
 * Listens on a NOTIFY channel for the app's lifetime on a dedicated connection (LISTEN cannot share
 * the pool) and hands each payload to `onPayload`. A dropped connection is reopened after a second;
 * notifications sent meanwhile are missed, so payloads should name something whose whole current
 * state the handler reads again (an id), never a delta.
 */
export function listenWhileOpen(
  app: FastifyInstance,
  channel: string,
  onPayload: (payload: string) => Promise<void>,
): void {
  let client: pg.Client | undefined
  let closing = false
  const connect = async (): Promise<void> => {
    client = new pg.Client(app.db.options)
    client.on('error', () => {})
    client.on('end', () => {
      if (!closing) setTimeout(() => connect().catch(() => {}), 1000).unref()
    })
    client.on('notification', (message) => {
      if (message.channel !== channel || !message.payload) return
      onPayload(message.payload).catch((err) => app.log.warn({ err, channel }, 'notification not handled'))
    })
    await client.connect()
    await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
  }
  app.addHook('onReady', connect)
  app.addHook('onClose', async () => {
    closing = true
    await client?.end().catch(() => {})
  })
}
