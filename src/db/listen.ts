import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { type BackoffOptions, backoffDelay } from '../lib/backoff.js'

/** Reconnect delays: from a quarter second, doubling (with jitter), to at most ten seconds. */
export const RECONNECT_BACKOFF = { baseMs: 250, maxMs: 10_000 }

export interface ChannelListenerOptions {
  /** Connection settings; the listener opens its own connection outside any pool. */
  connection: pg.ClientConfig
  channel: string
  /** Every notification on the channel, with its payload ('' when it had none). */
  onPayload(payload: string): void
  /**
   * After each successful LISTEN, the first one included: notifications sent while nobody listened
   * reached no one, so whatever they would have triggered should be looked at now.
   */
  onListening?(): void
  log: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void }
  backoff?: BackoffOptions
  /** Source of backoff jitter in [0, 1] (default Math.random); tests pin it. */
  random?: () => number
}

/**
 * LISTENs on one NOTIFY channel on a dedicated connection (a LISTEN must stay on one session, so it
 * cannot share a pool) until stopped. A dropped or refused connection is reopened with backoff for
 * as long as it runs, however long the database stays away. Notifications sent meanwhile are
 * missed: payloads should name something whose whole current state the handler reads again (an id
 * or a kind), never a delta, and `onListening` covers the gap.
 */
export class ChannelListener {
  private client: pg.Client | undefined
  private failures = 0
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly options: ChannelListenerOptions) {}

  /** Resolves once the first LISTEN attempt is done; a failed one is retried in the background. */
  start(): Promise<void> {
    return this.connect()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => {})
  }

  private async connect(): Promise<void> {
    const { channel, log } = this.options
    const next = new pg.Client(this.options.connection)
    let lost = false
    const onLost = (err?: Error) => {
      if (lost) return
      lost = true
      next.end().catch(() => {})
      if (this.client !== next) return
      this.client = undefined
      if (this.stopped) return
      if (this.failures === 0) log.warn({ err, channel }, 'LISTEN connection lost; reconnecting')
      this.reconnectLater()
    }
    next.on('error', onLost)
    next.on('end', () => onLost())
    next.on('notification', (message) => {
      if (message.channel === channel) this.options.onPayload(message.payload ?? '')
    })
    try {
      await next.connect()
      await next.query(
        `LISTEN ${/^[a-z_][a-z0-9_]*$/.test(channel) ? channel : pg.escapeIdentifier(channel)}`,
      )
    } catch (err) {
      lost = true
      next.end().catch(() => {})
      if (this.failures === 0) log.warn({ err, channel }, 'LISTEN connection failed; retrying')
      this.reconnectLater()
      return
    }
    if (this.stopped) {
      await next.end().catch(() => {})
      return
    }
    this.client = next
    if (this.failures > 0) log.info({ channel }, 'LISTEN connection restored')
    this.failures = 0
    this.options.onListening?.()
  }

  private reconnectLater(): void {
    if (this.stopped) return
    this.failures++
    clearTimeout(this.timer)
    const delay = backoffDelay(this.failures, this.options.backoff ?? RECONNECT_BACKOFF, this.options.random)
    this.timer = setTimeout(() => {
      void this.connect()
    }, delay)
    this.timer.unref()
  }
}

/**
 * Listens on a NOTIFY channel for the app's lifetime and hands each non-empty payload to
 * `onPayload` (see ChannelListener for what happens while the connection is down).
 */
export function listenWhileOpen(
  app: FastifyInstance,
  channel: string,
  onPayload: (payload: string) => Promise<void>,
): void {
  const listener = new ChannelListener({
    connection: app.db.options,
    channel,
    log: app.log,
    onPayload: (payload) => {
      if (!payload) return
      onPayload(payload).catch((err: unknown) => app.log.warn({ err, channel }, 'notification not handled'))
    },
  })
  app.addHook('onReady', () => listener.start())
  app.addHook('onClose', () => listener.stop())
}
