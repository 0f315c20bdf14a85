import { createHmac, timingSafeEqual } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { withTransaction } from '../../src/db/transaction.js'
import type { NotificationEvent } from '../../src/notifications/index.js'
import type { CapturedRequest } from '../helpers/capture-server.js'

/**
 * Verifies `x-regent-signature` exactly as docs/notifications.md ("Verifying a delivery") tells a
 * receiver to: split `t=…,v1=…`, refuse a timestamp more than 5 minutes away, HMAC-SHA256 the
 * secret over "<t>.<raw body>", and compare in constant time. Returns why it is refused, or undefined when it is genuine.
 */
export function signatureProblem(
  req: Pick<CapturedRequest, 'headers' | 'body'>,
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): string | undefined {
  const header = req.headers['x-regent-signature']
  if (typeof header !== 'string') return 'no signature header'
  const parts = Object.fromEntries(
    header.split(',').map((part) => {
      const at = part.indexOf('=')
      return [part.slice(0, at), part.slice(at + 1)]
    }),
  )
  const t = Number(parts.t)
  if (!Number.isInteger(t)) return 'no timestamp'
  if (Math.abs(nowSeconds - t) > 300) return 'timestamp outside the 5-minute tolerance'
  const expected = createHmac('sha256', secret).update(`${parts.t}.${req.body}`).digest()
  const given = Buffer.from(String(parts.v1 ?? ''), 'hex')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'signature mismatch'
  return undefined
}

/** Emits one event the way feature code does: inside a transaction of its own. */
export function emit(app: FastifyInstance, event: NotificationEvent): Promise<number> {
  return withTransaction(app.db, (client) => app.notifier.notify(client, event))
}

export interface DeliveryBody {
  id: string
  webhook: string
  type: string
  subject: string
  state: string
  attempts: number
  lastStatus: number | null
  lastError: string | null
  jobId: string | null
  summary: string
  teams: string[]
  registry: string | null
  data: Record<string, unknown>
}

export async function deliveries(
  app: FastifyInstance,
  headers: Record<string, string>,
  query = '',
): Promise<DeliveryBody[]> {
  const res = await app.inject({ url: `/v1/notifications/deliveries${query}`, headers })
  if (res.statusCode !== 200) throw new Error(`listing deliveries: ${res.statusCode} ${res.body}`)
  return res.json().items
}

/** Polls until `check` holds for the deliveries the query lists. */
export async function waitForDeliveries(
  app: FastifyInstance,
  headers: Record<string, string>,
  query: string,
  check: (items: DeliveryBody[]) => boolean,
  timeoutMs = 20_000,
): Promise<DeliveryBody[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const items = await deliveries(app, headers, query)
    if (check(items)) return items
    if (Date.now() > deadline)
      throw new Error(`deliveries ${query} never matched: ${JSON.stringify(items.map((i) => i.state))}`)
    await sleep(100)
  }
}
