import type { Queryable } from '../db/pool.js'
import type { PlanItem } from './plan.js'

/** SQL of deletion items: the per-item execution record. */

export type ItemState = 'pending' | 'deleted' | 'skipped' | 'failed'

export interface ItemRow {
  deletion_id: string
  position: number
  repository: string
  tag: string | null
  digest: string
  media_type: string
  action: PlanItem['action']
  vanishing_tags: string[]
  untag_method: string | null
  placeholder_digest: string | null
  state: ItemState
  delete_sent_at: Date | null
  outcome: string | null
  error_code: string | null
  error: string | null
  attempts: number
  restore_manifest: Buffer | null
  restore_media_type: string | null
  restore_tags: string[] | null
  restorable: boolean
  restored_at: Date | null
  restore_outcome: 'restored' | 'tag_taken' | 'forced' | null
  restore_note: string | null
  verified_at: Date | null
  delete_issued_at: Date | null
  finished_at: Date | null
}

export async function insertItems(db: Queryable, deletionId: string, items: PlanItem[]): Promise<void> {
  if (items.length === 0) return
  await db.query(
    `INSERT INTO deletion_items (deletion_id, position, repository, tag, digest, media_type, action, vanishing_tags, untag_method)
     SELECT $1::uuid, i.position, i.repository, i.tag, i.digest, i.media_type, i.action,
            ARRAY(SELECT jsonb_array_elements_text(i.vanishing)), i.untag_method
     FROM jsonb_to_recordset($2::jsonb)
       AS i(position int, repository text, tag text, digest text, media_type text, action text, vanishing jsonb, untag_method text)
     ON CONFLICT DO NOTHING`,
    [
      deletionId,
      JSON.stringify(
        items.map((item, position) => ({
          position,
          repository: item.repository,
          tag: item.tag,
          digest: item.digest,
          media_type: item.mediaType,
          action: item.action,
          vanishing: item.vanishingTags,
          untag_method: item.untagMethod ?? null,
        })),
      ),
    ],
  )
}

export async function itemsOf(db: Queryable, deletionId: string, state?: ItemState): Promise<ItemRow[]> {
  const { rows } = await db.query<ItemRow>(
    `SELECT * FROM deletion_items WHERE deletion_id = $1::uuid AND ($2::text IS NULL OR state = $2) ORDER BY position`,
    [deletionId, state ?? null],
  )
  return rows
}

/** What the transaction before a wave's DELETEs writes for one item that will be sent. */
export interface SentMarker {
  position: number
  /** When the verification that cleared the item began (its tag listing). */
  verifiedAt: Date
  /** What a restore pushes back; kept from an earlier attempt if one stored it already. */
  restore?: { manifest: Buffer; mediaType: string; tags: string[] }
  placeholderDigest?: string
}

/**
 * Committed before a wave's DELETEs leave: from now on a 404 for these items is our own doing.
 * One statement for the whole wave.
 */
export async function markSent(db: Queryable, deletionId: string, markers: SentMarker[]): Promise<void> {
  if (markers.length === 0) return
  await db.query(
    `UPDATE deletion_items d SET
       delete_sent_at = coalesce(d.delete_sent_at, now()),
       attempts = d.attempts + 1,
       verified_at = m.verified_at,
       restore_manifest = coalesce(d.restore_manifest, m.manifest),
       restore_media_type = coalesce(d.restore_media_type, m.media_type),
       restore_tags = CASE WHEN d.restore_manifest IS NULL AND m.manifest IS NOT NULL
                           THEN ARRAY(SELECT jsonb_array_elements_text(m.tags)) ELSE d.restore_tags END,
       placeholder_digest = coalesce(m.placeholder, d.placeholder_digest),
       updated_at = now()
     FROM unnest($2::int[], $3::timestamptz[], $4::bytea[], $5::text[], $6::jsonb[], $7::text[])
       AS m(position, verified_at, manifest, media_type, tags, placeholder)
     WHERE d.deletion_id = $1::uuid AND d.position = m.position`,
    [
      deletionId,
      markers.map((m) => m.position),
      markers.map((m) => m.verifiedAt),
      markers.map((m) => m.restore?.manifest ?? null),
      markers.map((m) => m.restore?.mediaType ?? null),
      markers.map((m) => JSON.stringify(m.restore?.tags ?? [])),
      markers.map((m) => m.placeholderDigest ?? null),
    ],
  )
}

export interface ItemResult {
  state: Exclude<ItemState, 'pending'>
  outcome: string
  errorCode?: string
  error?: string
}

/**
 * Ends items, once each: the guard on `pending` makes a second worker (or a re-run after a crash
 * that happened after this commit) find nothing to finish, so it writes no second audit event.
 * Returns the positions this call finished. One statement for the whole wave.
 */
export async function finishItems(
  db: Queryable,
  deletionId: string,
  results: { position: number; result: ItemResult; issuedAt?: Date }[],
): Promise<Set<number>> {
  if (results.length === 0) return new Set()
  const { rows } = await db.query<{ position: number }>(
    `UPDATE deletion_items d
     SET state = r.state, outcome = r.outcome, error_code = r.error_code, error = r.error,
         delete_issued_at = coalesce(r.issued_at, d.delete_issued_at),
         finished_at = now(), updated_at = now(),
         restorable = (r.state = 'deleted' AND d.restore_manifest IS NOT NULL)
     FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
       AS r(position, state, outcome, error_code, error, issued_at)
     WHERE d.deletion_id = $1::uuid AND d.position = r.position AND d.state = 'pending'
     RETURNING d.position`,
    [
      deletionId,
      results.map((r) => r.position),
      results.map((r) => r.result.state),
      results.map((r) => r.result.outcome),
      results.map((r) => r.result.errorCode ?? null),
      results.map((r) => r.result.error ?? null),
      results.map((r) => r.issuedAt ?? null),
    ],
  )
  return new Set(rows.map((r) => r.position))
}

export interface ItemCounts {
  total: number
  pending: number
  deleted: number
  skipped: number
  failed: number
}

/** A request's item counts, and how many of its skipped items were left alone because the plan changed. */
export interface ItemTally {
  counts: ItemCounts
  planChanged: number
}

/** Per request, its item counts and plan_changed skips: one statement, for views and final states. */
export async function itemTallies(db: Queryable, deletionIds: string[]): Promise<Map<string, ItemTally>> {
  const { rows } = await db.query<{ deletion_id: string; state: ItemState; n: number; plan_changed: number }>(
    `SELECT deletion_id, state, count(*)::int AS n,
            count(*) FILTER (WHERE state = 'skipped' AND outcome = 'plan_changed')::int AS plan_changed
     FROM deletion_items WHERE deletion_id = ANY($1::uuid[]) GROUP BY deletion_id, state`,
    [deletionIds],
  )
  const out = new Map<string, ItemTally>()
  for (const row of rows) {
    let tally = out.get(row.deletion_id)
    if (!tally) {
      tally = { counts: { total: 0, pending: 0, deleted: 0, skipped: 0, failed: 0 }, planChanged: 0 }
      out.set(row.deletion_id, tally)
    }
    tally.counts[row.state] += row.n
    tally.counts.total += row.n
    tally.planChanged += row.plan_changed
  }
  return out
}

export async function itemCounts(db: Queryable, deletionIds: string[]): Promise<Map<string, ItemCounts>> {
  const tallies = await itemTallies(db, deletionIds)
  return new Map([...tallies].map(([id, tally]) => [id, tally.counts]))
}

/** `retry`: failed items become pending again; skipped ones (a moved tag) stay skipped. */
export async function resetFailedItems(db: Queryable, deletionId: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE deletion_items SET state = 'pending', outcome = NULL, error_code = NULL, error = NULL, finished_at = NULL,
       updated_at = now()
     WHERE deletion_id = $1::uuid AND state = 'failed'`,
    [deletionId],
  )
  return rowCount ?? 0
}

/** Records what a restore did with an item; once: a second restore finds it no longer restorable. */
export async function markRestored(
  db: Queryable,
  item: ItemRow,
  outcome: { outcome: 'restored' | 'tag_taken' | 'forced'; note: string | null },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE deletion_items SET restored_at = now(), restorable = false, restore_outcome = $3, restore_note = $4,
       updated_at = now()
     WHERE deletion_id = $1::uuid AND position = $2 AND restorable`,
    [item.deletion_id, item.position, outcome.outcome, outcome.note],
  )
  return rowCount === 1
}

/** Items of a request in position order, a page at a time (for the items endpoint). */
export async function pageOfItems(
  db: Queryable,
  deletionId: string,
  page: { afterPosition: number; limit: number; state?: ItemState },
): Promise<ItemRow[]> {
  const { rows } = await db.query<ItemRow>(
    `SELECT * FROM deletion_items
     WHERE deletion_id = $1::uuid AND position > $2 AND ($3::text IS NULL OR state = $3)
     ORDER BY position LIMIT $4`,
    [deletionId, page.afterPosition, page.state ?? null, page.limit],
  )
  return rows
}

/** Milliseconds from verification to DELETE of the sent items of some requests (the residual window). */
export async function verificationWindows(db: Queryable, deletionIds: string[]): Promise<number[]> {
  const { rows } = await db.query<{ ms: number }>(
    `SELECT extract(epoch FROM delete_issued_at - verified_at) * 1000 AS ms FROM deletion_items
     WHERE deletion_id = ANY($1::uuid[]) AND delete_issued_at IS NOT NULL AND verified_at IS NOT NULL`,
    [deletionIds],
  )
  return rows.map((r) => Number(r.ms))
}

/**
 * The restore window: items of the registry deleted before a garbage collection's sweep began lose
 * their blobs to it, so they can no longer be restored. Returns how many closed.
 */
export async function closeRestoreWindow(db: Queryable, registry: string, before: Date): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE deletion_items di SET restorable = false, updated_at = now()
     FROM deletion_requests dr
     WHERE dr.id = di.deletion_id AND dr.registry = $1::text
       AND di.restorable AND di.state = 'deleted' AND di.finished_at <= $2::timestamptz`,
    [registry, before],
  )
  return rowCount ?? 0
}

/** When the registry's newest still restorable deletion happened (restoreWindowMs waits for it). */
export async function newestRestorableDeletion(db: Queryable, registry: string): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT max(di.finished_at) AS at FROM deletion_items di
     JOIN deletion_requests dr ON dr.id = di.deletion_id
     WHERE dr.registry = $1::text AND di.restorable`,
    [registry],
  )
  return rows[0]?.at ?? null
}
