import type { JsonObject } from '../audit/types.js'
import type { Queryable } from '../db/pool.js'
import { CREATED_KEY, type Keyset, type KeysetRow } from '../lib/paging.js'

/** The statements of webhook deliveries, one function each (migration 009). */

export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const
export type DeliveryState = (typeof DELIVERY_STATES)[number]

export interface DeliveryRow {
  id: string
  webhook: string
  event_type: string
  subject: string
  registry: string | null
  teams: string[]
  summary: string
  payload: JsonObject
  state: DeliveryState
  attempts: number
  last_status: number | null
  last_error: string | null
  job_id: string | null
  created_at: Date
  updated_at: Date
  delivered_at: Date | null
  failed_at: Date | null
}

/** Receivers' error text is for people reading the list: it is cut, the logs keep the rest. */
const MAX_ERROR_LENGTH = 1000

const cut = (text: string | null) => (text === null ? null : text.slice(0, MAX_ERROR_LENGTH))

export interface NewDelivery {
  webhook: string
  eventType: string
  subject: string
  registry: string | null
  teams: string[]
  summary: string
  payload: JsonObject
}

/** Adds pending deliveries, one per webhook, in the caller's transaction. */
export async function insertDeliveries(db: Queryable, deliveries: NewDelivery[]): Promise<DeliveryRow[]> {
  if (deliveries.length === 0) return []
  const { rows } = await db.query<DeliveryRow>(
    `INSERT INTO notification_deliveries (webhook, event_type, subject, registry, teams, summary, payload)
     SELECT d.webhook, d.event_type, d.subject, d.registry,
            ARRAY(SELECT jsonb_array_elements_text(d.teams)), d.summary, d.payload
     FROM jsonb_to_recordset($1::jsonb) AS d(
       webhook text, event_type text, subject text, registry text, teams jsonb, summary text, payload jsonb)
     RETURNING *`,
    [
      JSON.stringify(
        deliveries.map((d) => ({
          webhook: d.webhook,
          event_type: d.eventType,
          subject: d.subject,
          registry: d.registry,
          teams: d.teams,
          summary: d.summary,
          payload: d.payload,
        })),
      ),
    ],
  )
  return rows
}

export async function setDeliveryJob(db: Queryable, id: string, jobId: string): Promise<void> {
  await db.query('UPDATE notification_deliveries SET job_id = $2::uuid WHERE id = $1::uuid', [id, jobId])
}

export async function getDelivery(
  db: Queryable,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT * FROM notification_deliveries WHERE id = $1::uuid${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  )
  return rows[0]
}

/** A 2xx answer: delivered, once. False when the row was no longer pending. */
export async function markDelivered(db: Queryable, id: string, status: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE notification_deliveries
     SET state = 'delivered', attempts = attempts + 1, last_status = $2::integer, last_error = NULL,
         delivered_at = now(), updated_at = now()
     WHERE id = $1::uuid AND state = 'pending'`,
    [id, status],
  )
  return rowCount === 1
}

/** An attempt that did not deliver: counted, with the status (null for a network error) and why. */
export async function recordFailedAttempt(
  db: Queryable,
  id: string,
  status: number | null,
  error: string,
): Promise<void> {
  await db.query(
    `UPDATE notification_deliveries
     SET attempts = attempts + 1, last_status = $2::integer, last_error = $3::text, updated_at = now()
     WHERE id = $1::uuid AND state = 'pending'`,
    [id, status, cut(error)],
  )
}

/** The queue gave up: the delivery is failed, keeping its last status; the job's error if none. */
export async function markFailed(db: Queryable, id: string, jobError: string | null): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE notification_deliveries
     SET state = 'failed', last_error = coalesce(last_error, $2::text), failed_at = now(), updated_at = now()
     WHERE id = $1::uuid AND state = 'pending'`,
    [id, cut(jobError)],
  )
  return rowCount === 1
}

/** failed → pending for a redelivery, with its new job. False when it was not failed. */
export async function reopenDelivery(db: Queryable, id: string, jobId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE notification_deliveries
     SET state = 'pending', job_id = $2::uuid, failed_at = NULL, updated_at = now()
     WHERE id = $1::uuid AND state = 'failed'`,
    [id, jobId],
  )
  return rowCount === 1
}

export interface DeliveryFilters {
  webhook?: string
  state?: DeliveryState
  type?: string
  subject?: string
}

/** Newest first, keyset-paginated on (created_at, id) (src/lib/paging.ts). */
export async function listDeliveries(
  db: Queryable,
  filters: DeliveryFilters,
  page: { limit: number; after?: Keyset },
): Promise<(DeliveryRow & KeysetRow)[]> {
  const { rows } = await db.query<DeliveryRow & KeysetRow>(
    `SELECT *, ${CREATED_KEY} FROM notification_deliveries
     WHERE ($1::text IS NULL OR webhook = $1::text)
       AND ($2::text IS NULL OR state = $2::text)
       AND ($3::text IS NULL OR event_type = $3::text)
       AND ($4::text IS NULL OR subject = $4::text)
       AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::uuid))
     ORDER BY created_at DESC, id DESC
     LIMIT $7::integer`,
    [
      filters.webhook ?? null,
      filters.state ?? null,
      filters.type ?? null,
      filters.subject ?? null,
      page.after?.createdAt ?? null,
      page.after?.id ?? null,
      page.limit,
    ],
  )
  return rows
}

/**
 * Deletes delivered deliveries older than `finishedBefore` or beyond the newest `keep`, and failed
 * ones older than `finishedBefore` (until then they stay listable and can be redelivered); pending
 * ones are never touched. Returns how many went.
 */
export async function purgeDeliveries(
  db: Queryable,
  options: { finishedBefore: Date; keep: number; limit: number },
): Promise<number> {
  const { rowCount } = await db.query(
    `WITH finished AS (
       SELECT id, state, coalesce(delivered_at, failed_at, updated_at) AS ended,
              row_number() OVER (PARTITION BY state = 'delivered'
                                 ORDER BY coalesce(delivered_at, failed_at, updated_at) DESC, id DESC) AS nth
       FROM notification_deliveries WHERE state IN ('delivered', 'failed')
     ), doomed AS (
       SELECT id FROM finished
       WHERE ended < $1::timestamptz OR (state = 'delivered' AND nth > $2::integer)
       ORDER BY ended LIMIT $3::integer
     )
     DELETE FROM notification_deliveries d USING doomed WHERE d.id = doomed.id`,
    [options.finishedBefore, options.keep, options.limit],
  )
  return rowCount ?? 0
}
