import type { Queryable } from '../db/pool.js'
import type { LegalHold } from '../governance/protection.js'
import { assertUuid } from '../lib/validate.js'

/** Legal holds live in Postgres (admins create and lift them through the API); SQL here. */

/**
 * Orders placing a hold against deciding to send DELETEs. Placing takes this transaction lock
 * exclusively, the transaction that writes a wave's "DELETE sent" markers takes it shared before it
 * reads the holds: a hold either commits first (and the markers' transaction sees it) or waits
 * until the markers are committed (and those DELETEs go out before the hold exists). There is no
 * third order, so a hold committed before an item's marker always stops the item.
 */
const HOLDS_LOCK_KEY = 7_462_010_012

export async function lockHoldsForPlacing(db: Queryable): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock($1::bigint)', [HOLDS_LOCK_KEY])
}

export async function lockHoldsForReading(db: Queryable): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock_shared($1::bigint)', [HOLDS_LOCK_KEY])
}

export interface HoldRow {
  id: string
  registry: string
  repository: string
  digest: string | null
  reason: string
  until: Date
  created_by: string
  created_at: Date
  lifted_at: Date | null
  lifted_by: string | null
}

export async function insertHold(
  db: Queryable,
  hold: {
    registry: string
    repository: string
    digest: string | null
    reason: string
    until: Date
    createdBy: string
  },
): Promise<HoldRow> {
  const { rows } = await db.query<HoldRow>(
    `INSERT INTO legal_holds (registry, repository, digest, reason, until, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [hold.registry, hold.repository, hold.digest, hold.reason, hold.until, hold.createdBy],
  )
  return rows[0]!
}

export async function activeHolds(db: Queryable): Promise<LegalHold[]> {
  const { rows } = await db.query<HoldRow>(
    'SELECT * FROM legal_holds WHERE lifted_at IS NULL AND until > now()',
  )
  return rows.map(toLegalHold)
}

export async function listHolds(db: Queryable, options: { includeEnded: boolean }): Promise<HoldRow[]> {
  const { rows } = await db.query<HoldRow>(
    `SELECT * FROM legal_holds
     WHERE $1::boolean OR (lifted_at IS NULL AND until > now())
     ORDER BY created_at DESC LIMIT 1000`,
    [options.includeEnded],
  )
  return rows
}

export async function liftHold(db: Queryable, id: string, by: string): Promise<HoldRow | undefined> {
  assertUuid(id)
  const { rows } = await db.query<HoldRow>(
    `UPDATE legal_holds SET lifted_at = now(), lifted_by = $2
     WHERE id = $1::uuid AND lifted_at IS NULL RETURNING *`,
    [id, by],
  )
  return rows[0]
}

export function toLegalHold(row: HoldRow): LegalHold {
  return {
    id: row.id,
    registry: row.registry,
    repository: row.repository,
    ...(row.digest ? { digest: row.digest } : {}),
    until: row.until,
    reason: row.reason,
  }
}
