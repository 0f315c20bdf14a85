import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { backoffDelay } from '../lib/backoff.js'

/** Reconnect delays: from a quarter second, doubling (with jitter), to at most ten seconds. */
export const RECONNECT_BACKOFF = { baseMs: 250, maxMs: 10_000 }

/**
 * Listens on a NOTIFY channel for the app's lifetime on a dedicated connection (LISTEN cannot share
 * the pool) and hands each payload to `onPayload`. A dropped connection is reopened with backoff
 * for as long as the app runs, however long the database stays away; notifications sent meanwhile
 * are missed, so payloads should name something whose whole current state the handler reads again
 * (an id), never a delta.
 */
export function listenWhileOpen(
  app: FastifyInstance,
  channel: string,
  onPayload: (payload: string) => Promise<void>,
): void {
  let client: pg.Client | undefined
  let closing = false
  let failures = 0
  let timer: NodeJS.Timeout | undefined

  const reconnectLater = () => {
    if (closing) return
    failures++
    clearTimeout(timer)
    timer = setTimeout(
      () => {
        void connect().catch(() => {})
      },
      backoffDelay(failures, RECONNECT_BACKOFF),
    )
    timer.unref()
  }

  const connect = async (): Promise<void> => {
    const next = new pg.Client(app.db.options)
    client = next
    let lost = false
    const onLost = (err?: Error) => {
      if (lost || client !== next) return
      lost = true
      client = undefined
      next.end().catch(() => {})
      if (!closing) {
        if (failures === 0) app.log.warn({ err, channel }, 'LISTEN connection lost; reconnecting')
        reconnectLater()
      }
    }
    next.on('error', onLost)
    next.on('end', () => onLost())
    next.on('notification', (message) => {
      if (message.channel !== channel || !message.payload) return
      onPayload(message.payload).catch((err) => app.log.warn({ err, channel }, 'notification not handled'))
    })
    try {
      await next.connect()
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
    } catch (err) {
      onLost(err as Error)
      throw err
    }
    if (failures > 0) app.log.info({ channel }, 'LISTEN connection restored')
    failures = 0
  }

  app.addHook('onReady', connect)
  app.addHook('onClose', async () => {
    closing = true
    clearTimeout(timer)
    await client?.end().catch(() => {})
  })
}
