import type { Queryable } from '../db/pool.js'
import { computeEventHash } from './hash.js'
import { type AuditEventRow, eventColumns, rowToEvent } from './rows.js'
import { GENESIS_HASH } from './types.js'

export interface VerifyOptions {
  /** First seq to check (default 1). Its predecessor's stored hash is taken as the link to it. */
  fromSeq?: number
  /** Rows read per query (default 1000): the walk never holds more than one batch in memory. */
  batchSize?: number
  /**
   * A checkpoint exported earlier (a previous run's `lastSeq` and `lastHash`, kept outside the
   * database). A chain rewritten consistently up to that point recomputes fine on its own; only
   * a hash kept elsewhere shows it.
   */
  checkpoint?: { seq: number; hash: string }
}

export type VerifyResult =
  | { ok: true; checked: number; lastSeq: number; lastHash: string }
  | {
      ok: false
      checked: number
      firstBrokenSeq: number
      /**
       * `hash_mismatch`: the row's fields do not hash to its stored hash (it was edited), or its
       * hash differs from a checkpoint's. `prev_hash_mismatch`: the row does not link to the row
       * before it. `missing_seq`: that seq is absent (a row was deleted).
       */
      reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'missing_seq'
    }

const SELECT_BATCH = `
  SELECT ${eventColumns()} FROM audit_events
  WHERE seq >= $1::bigint
  ORDER BY audit_events.seq
  LIMIT $2::int`

const SELECT_HASH_AT = 'SELECT hash FROM audit_events WHERE seq = $1::bigint'

const SELECT_HEAD = 'SELECT last_seq::text AS last_seq, last_hash FROM audit_chain_head WHERE id'

/**
 * Walks the audit chain in seq order, in keyset batches, recomputing every row's hash and checking
 * every link. Reports the first broken or missing link, or the end of the chain.
 *
 * Safe to run while writers append. The chain head is read first: every seq up to it had committed
 * by then (the head moves in the writer's transaction), so each must be found by the walk; rows
 * appended during the walk are checked too if the walk reaches them. The head also catches what
 * no hole shows: newest rows deleted, or the newest row rewritten with a recomputed hash.
 */
export async function verifyAuditChain(db: Queryable, options: VerifyOptions = {}): Promise<VerifyResult> {
  const fromSeq = options.fromSeq ?? 1
  const batchSize = options.batchSize ?? 1000
  if (!Number.isSafeInteger(fromSeq) || fromSeq < 1) throw new RangeError('fromSeq must be an integer >= 1')
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new RangeError('batchSize must be an integer >= 1')

  const headRows = await db.query<{ last_seq: string; last_hash: string }>(SELECT_HEAD)
  const head = headRows.rows[0]
  if (!head) throw new Error('audit_chain_head has no row: migration 002 has not run')
  const anchors = [{ seq: Number(head.last_seq), hash: head.last_hash }]
  if (options.checkpoint) anchors.push(options.checkpoint)

  let checked = 0
  let expectedSeq = fromSeq
  let expectedPrev = GENESIS_HASH
  if (fromSeq > 1) {
    const before = await db.query<{ hash: string }>(SELECT_HASH_AT, [fromSeq - 1])
    if (!before.rows[0]) return { ok: false, checked, firstBrokenSeq: fromSeq - 1, reason: 'missing_seq' }
    expectedPrev = before.rows[0].hash
  }

  for (;;) {
    const { rows } = await db.query<AuditEventRow>(SELECT_BATCH, [expectedSeq, batchSize])
    for (const row of rows) {
      const event = rowToEvent(row)
      const broken = (reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'missing_seq', seq = event.seq) =>
        ({ ok: false, checked, firstBrokenSeq: seq, reason }) as const
      if (event.seq !== expectedSeq) return broken('missing_seq', expectedSeq)
      if (event.prevHash !== expectedPrev) return broken('prev_hash_mismatch')
      if (computeEventHash(event.prevHash, event) !== event.hash) return broken('hash_mismatch')
      if (anchors.some((a) => a.seq === event.seq && a.hash !== event.hash)) return broken('hash_mismatch')
      checked++
      expectedSeq++
      expectedPrev = event.hash
    }
    if (rows.length < batchSize) break
  }

  const lastSeq = expectedSeq - 1
  // A committed seq (or a checkpoint's) beyond the end of the walk: the newest rows are gone.
  if (anchors.some((a) => a.seq > lastSeq)) {
    return { ok: false, checked, firstBrokenSeq: lastSeq + 1, reason: 'missing_seq' }
  }
  return { ok: true, checked, lastSeq, lastHash: expectedPrev }
}
