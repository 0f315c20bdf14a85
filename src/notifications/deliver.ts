import type pg from 'pg'
import { Type } from 'typebox'
import { type Dispatcher, request } from 'undici'
import { type Job, type JobContext, type JobKind, NonRetryableJobError } from '../jobs/index.js'
import type { WebhookConfig } from './config-schema.js'
import { renderDelivery, signatureHeader } from './formats.js'
import { DELIVER_NOTIFICATION } from './notify.js'
import { getDelivery, markDelivered, markFailed, recordFailedAttempt } from './sql.js'

export interface DeliveryDeps {
  pool: pg.Pool
  /** The configured webhooks by name; a delivery whose webhook was removed fails at once. */
  webhooks: Map<string, WebhookConfig>
  /** HMAC secrets by webhook name, read from the environment at boot (never stored or logged). */
  secrets: Map<string, string>
  /** One Agent with the connect timeout; header and body timeouts are per request. */
  dispatcher: Dispatcher
  timeoutMs: number
  /** The CloudEvents `source`. */
  source: string
  /** Seconds since the epoch for the signature (tests pin it). */
  now?: () => number
}

/** A receiver's Retry-After is honoured up to this long; beyond it the queue's backoff decides. */
const MAX_RETRY_AFTER_MS = 5 * 60_000

/** What a `notification.deliver` job carries. */
export const DeliveryPayloadSchema = Type.Object({ deliveryId: Type.String() })

/**
 * Sends one delivery (job `notification.deliver`). Idempotent: a delivery that is already
 * delivered (or failed, or handed to a newer job by a redelivery) is left alone, so a job that runs
 * again after a crash never sends a second time what a receiver already acknowledged. No
 * transaction is open during the POST; each outcome is one short statement.
 *
 * 2xx is delivered. Anything else (3xx included: redirects are not followed, a signed body goes
 * only where it was configured to) and network errors are recorded on the row and thrown, so the
 * queue retries with backoff; when it gives up, `onDeliveryFailed` marks the row failed.
 */
export function deliveryJob(deps: DeliveryDeps): JobKind<typeof DeliveryPayloadSchema> {
  return {
    kind: DELIVER_NOTIFICATION,
    payload: DeliveryPayloadSchema,
    run: (payload, job, ctx) => deliver(deps, payload.deliveryId, job, ctx),
    onFailed: async (client, payload, job) => {
      await markFailed(client, payload.deliveryId, job.lastError)
    },
  }
}

async function deliver(deps: DeliveryDeps, deliveryId: string, job: Job, ctx: JobContext) {
  const row = await getDelivery(deps.pool, deliveryId)
  if (!row) throw new NonRetryableJobError(`delivery ${deliveryId} does not exist`)
  if (row.state !== 'pending') return { skipped: row.state }
  if (row.job_id !== null && row.job_id !== job.id) return { skipped: 'superseded by a redelivery' }

  const webhook = deps.webhooks.get(row.webhook)
  if (!webhook) {
    const message = `webhook ${row.webhook} is no longer configured`
    await recordFailedAttempt(deps.pool, row.id, null, message)
    throw new NonRetryableJobError(message)
  }
  const { contentType, body } = renderDelivery(row, webhook.format, { source: deps.source })
  const headers: Record<string, string> = {
    'content-type': contentType,
    'user-agent': 'regent',
    'x-regent-delivery': row.id,
    'x-regent-event': row.event_type,
  }
  const secret = deps.secrets.get(webhook.name)
  if (secret) {
    const now = deps.now?.() ?? Math.floor(Date.now() / 1000)
    headers['x-regent-signature'] = signatureHeader(secret, body, now)
  }

  let status: number
  let retryAfter: string | string[] | undefined
  try {
    const res = await request(webhook.url, {
      method: 'POST',
      headers,
      body,
      dispatcher: deps.dispatcher,
      signal: ctx.signal,
      headersTimeout: deps.timeoutMs,
      bodyTimeout: deps.timeoutMs,
    })
    status = res.statusCode
    retryAfter = res.headers['retry-after']
    // Always consume the answer: an unread body holds the connection.
    await res.body.dump()
  } catch (err) {
    // A shutdown or a lost lease: not the receiver's fault, and the job is no longer ours to record.
    if (ctx.signal.aborted) throw err
    await recordFailedAttempt(deps.pool, row.id, null, describe(err))
    throw err
  }

  if (status >= 200 && status < 300) {
    await markDelivered(deps.pool, row.id, status)
    return { status }
  }
  const message = `the receiver answered ${status}`
  await recordFailedAttempt(deps.pool, row.id, status, message)
  const err = new Error(message)
  const waitMs = retryAfterMs(retryAfter)
  if (waitMs !== undefined) Object.assign(err, { retryAfterMs: Math.min(waitMs, MAX_RETRY_AFTER_MS) })
  throw err
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/** undici's errors carry a stable code (UND_ERR_CONNECT_TIMEOUT, ECONNREFUSED…): keep it. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as { code?: unknown }).code
  return `${typeof code === 'string' ? `${code}: ` : ''}${err.message || err.name}`
}
