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

/** Committed before the DELETE leaves: from now on a 404 for this digest is our own doing. */
export async function markDeleteSent(db: Queryable, item: ItemRow): Promise<void> {
  await db.query(
    `UPDATE deletion_items SET delete_sent_at = coalesce(delete_sent_at, now()), attempts = attempts + 1, updated_at = now()
     WHERE deletion_id = $1::uuid AND position = $2`,
    [item.deletion_id, item.position],
  )
}

export async function storeRestoreData(
  db: Queryable,
  item: ItemRow,
  data: { manifest: Buffer; mediaType: string; tags: string[] },
): Promise<void> {
  await db.query(
    `UPDATE deletion_items SET restore_manifest = $3, restore_media_type = $4, restore_tags = $5::text[], updated_at = now()
     WHERE deletion_id = $1::uuid AND position = $2`,
    [item.deletion_id, item.position, data.manifest, data.mediaType, data.tags],
  )
}

export async function storePlaceholder(db: Queryable, item: ItemRow, digest: string): Promise<void> {
  await db.query(
    'UPDATE deletion_items SET placeholder_digest = $3, updated_at = now() WHERE deletion_id = $1::uuid AND position = $2',
    [item.deletion_id, item.position, digest],
  )
}

/**
 * Ends an item, once: the guard on `pending` makes a second worker (or a re-run after a crash that
 * happened after this commit) find nothing to finish, so it writes no second audit event.
 */
export async function finishItem(
  db: Queryable,
  item: ItemRow,
  result: { state: Exclude<ItemState, 'pending'>; outcome: string; errorCode?: string; error?: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE deletion_items
     SET state = $3, outcome = $4, error_code = $5, error = $6, finished_at = now(), updated_at = now(),
         restorable = ($3 = 'deleted' AND restore_manifest IS NOT NULL)
     WHERE deletion_id = $1::uuid AND position = $2 AND state = 'pending'`,
    [
      item.deletion_id,
      item.position,
      result.state,
      result.outcome,
      result.errorCode ?? null,
      result.error ?? null,
    ],
  )
  return rowCount === 1
}

export interface ItemCounts {
  total: number
  pending: number
  deleted: number
  skipped: number
  failed: number
}

export async function itemCounts(db: Queryable, deletionIds: string[]): Promise<Map<string, ItemCounts>> {
  const { rows } = await db.query<{ deletion_id: string; state: ItemState; n: string }>(
    `SELECT deletion_id, state, count(*)::text AS n FROM deletion_items
     WHERE deletion_id = ANY($1::uuid[]) GROUP BY deletion_id, state`,
    [deletionIds],
  )
  const out = new Map<string, ItemCounts>()
  for (const row of rows) {
    const counts = out.get(row.deletion_id) ?? { total: 0, pending: 0, deleted: 0, skipped: 0, failed: 0 }
    counts[row.state] += Number(row.n)
    counts.total += Number(row.n)
    out.set(row.deletion_id, counts)
  }
  return out
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

export async function markRestored(db: Queryable, item: ItemRow): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE deletion_items SET restored_at = now(), restorable = false, updated_at = now()
     WHERE deletion_id = $1::uuid AND position = $2 AND restorable`,
    [item.deletion_id, item.position],
  )
  return rowCount === 1
}
