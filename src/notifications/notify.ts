import type pg from 'pg'
import type { JsonObject } from '../audit/types.js'
import { enqueueJob } from '../jobs/index.js'
import type { NotificationsConfig, WebhookConfig } from './config-schema.js'
import { type NotificationEvent, webhookWants } from './events.js'
import { insertDeliveries, setDeliveryJob } from './sql.js'

/** The job kind that sends one delivery. */
export const DELIVER_NOTIFICATION = 'notification.deliver'

/** Used when `notify` is called without a limit (NotificationsConfig's default). */
const DEFAULT_MAX_ATTEMPTS = 8

/**
 * Emits an event inside the caller's transaction: one pending delivery row and one queued job per
 * webhook that wants it (a transactional outbox). If the caller's transaction rolls back, neither
 * exists; if it commits, the worker is woken by the job's NOTIFY and sends them. Returns how many
 * deliveries were created.
 *
 * The delivery jobs name no registry: they call receivers, not registries, so they must not take
 * a registry's job slots (jobs.registryConcurrency).
 */
export async function notify(
  client: pg.PoolClient,
  webhooks: WebhookConfig[],
  event: NotificationEvent,
  options: { maxAttempts?: number } = {},
): Promise<number> {
  const targets = webhooks.filter((webhook) => webhookWants(webhook, event))
  if (targets.length === 0) return 0
  const payload = jsonObject({
    type: event.type,
    subject: event.subject,
    registry: event.registry ?? null,
    teams: event.teams ?? [],
    summary: event.summary,
    data: event.data,
  })
  const rows = await insertDeliveries(
    client,
    targets.map((webhook) => ({
      webhook: webhook.name,
      eventType: event.type,
      subject: event.subject,
      registry: event.registry ?? null,
      teams: event.teams ?? [],
      summary: event.summary,
      payload,
    })),
  )
  for (const row of rows) {
    const { job } = await enqueueJob(client, {
      kind: DELIVER_NOTIFICATION,
      payload: { deliveryId: row.id },
      uniqueKey: `notification:${row.id}`,
      maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    })
    await setDeliveryJob(client, row.id, job.id)
  }
  return rows.length
}

/**
 * The configured webhooks, for feature code that emits events: `app.notifier.notify(client, event)`
 * inside the transaction of the state change.
 */
export class Notifier {
  constructor(readonly config: NotificationsConfig) {}

  /** Whether any webhook is configured at all: emitters may skip building an event when not. */
  get active(): boolean {
    return this.config.webhooks.length > 0
  }

  notify(client: pg.PoolClient, event: NotificationEvent): Promise<number> {
    if (!this.active) return Promise.resolve(0)
    return notify(client, this.config.webhooks, event, { maxAttempts: this.config.maxAttempts })
  }
}

/** Event data goes into jsonb as JSON: a round trip drops `undefined` and turns Dates into strings. */
export function jsonObject(value: object): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject
}
