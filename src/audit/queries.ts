import type { Queryable } from '../db/pool.js'
import { errors } from '../errors.js'
import { type AuditEventRow, eventColumns, rowToEvent } from './rows.js'
import type { AuditEvent } from './types.js'

export interface AuditFilters {
  registry?: string
  repository?: string
  /** Matches the caller (`actor_subject`) or the person a bot acted for (`on_behalf_of`). */
  actor?: string
  action?: string
  deletionId?: string
  /** Inclusive lower bound on occurred_at. */
  from?: Date | string
  /** Exclusive upper bound on occurred_at. */
  to?: Date | string
}

export interface PageRequest {
  /** Events per page, 1–500 (default 50). */
  limit?: number
  /** `nextCursor` of the previous page. */
  cursor?: string
}

export interface AuditPage {
  events: AuditEvent[]
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null
}

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 500

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// One statement per direction. Unset filters are NULL parameters; pg sends unnamed statements, so
// Postgres plans each call with its actual values and drops the `$n IS NULL` branches, keeping the
// (filter, seq) indexes usable.
const FILTERS = `
  ($1::text IS NULL OR registry = $1::text)
  AND ($2::text IS NULL OR repository = $2::text)
  AND ($3::text IS NULL OR actor_subject = $3::text OR on_behalf_of = $3::text)
  AND ($4::text IS NULL OR action = $4::text)
  AND ($5::uuid IS NULL OR deletion_id = $5::uuid)
  AND ($6::timestamptz IS NULL OR occurred_at >= $6::timestamptz)
  AND ($7::timestamptz IS NULL OR occurred_at < $7::timestamptz)`

const NEWEST_FIRST = `
  SELECT ${eventColumns()} FROM audit_events
  WHERE ${FILTERS} AND ($8::bigint IS NULL OR seq < $8::bigint)
  ORDER BY audit_events.seq DESC
  LIMIT $9::int`

const OLDEST_FIRST = `
  SELECT ${eventColumns()} FROM audit_events
  WHERE ${FILTERS} AND seq > $8::bigint
  ORDER BY audit_events.seq
  LIMIT $9::int`

/** Audit events matching the filters, newest first, one keyset page at a time. */
export async function listAuditEvents(
  db: Queryable,
  filters: AuditFilters,
  page: PageRequest = {},
): Promise<AuditPage> {
  const limit = page.limit ?? DEFAULT_PAGE_SIZE
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new errors.VALIDATION(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`)
  }
  const before = page.cursor === undefined ? null : decodeCursor(page.cursor)
  const { rows } = await db.query<AuditEventRow>(NEWEST_FIRST, [...filterParams(filters), before, limit + 1])
  const events = rows.slice(0, limit).map(rowToEvent)
  const last = events.at(-1)
  return { events, nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
}

/**
 * Every matching event, oldest first (chain order), read in keyset batches: for NDJSON exports of
 * any size without holding the result in memory.
 */
export async function* streamAuditEvents(
  db: Queryable,
  filters: AuditFilters,
  options: { batchSize?: number } = {},
): AsyncGenerator<AuditEvent> {
  const batchSize = options.batchSize ?? MAX_PAGE_SIZE
  const params = filterParams(filters)
  let after = 0
  for (;;) {
    const { rows } = await db.query<AuditEventRow>(OLDEST_FIRST, [...params, after, batchSize])
    for (const row of rows) yield rowToEvent(row)
    const last = rows.at(-1)
    if (!last || rows.length < batchSize) return
    after = Number(last.seq)
  }
}

function filterParams(filters: AuditFilters): unknown[] {
  if (filters.deletionId !== undefined && !UUID.test(filters.deletionId)) {
    throw new errors.VALIDATION('deletionId must be a UUID')
  }
  return [
    filters.registry ?? null,
    filters.repository ?? null,
    filters.actor ?? null,
    filters.action ?? null,
    filters.deletionId ?? null,
    timeParam(filters.from, 'from'),
    timeParam(filters.to, 'to'),
  ]
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2}))?$/

function timeParam(value: Date | string | undefined, name: string): string | null {
  if (value === undefined) return null
  // A string keeps the microseconds a caller copied from an event's occurredAt; a Date has ms only.
  if (typeof value === 'string') {
    if (ISO_DATE_TIME.test(value) && !Number.isNaN(Date.parse(value))) return value
  } else if (!Number.isNaN(value.getTime())) {
    return value.toISOString()
  }
  throw new errors.VALIDATION(`${name} must be an ISO 8601 date-time`)
}

/** The cursor is opaque to callers: base64url of a small JSON document naming the last seq seen. */
export function encodeCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ before: seq })).toString('base64url')
}

function decodeCursor(cursor: string): number {
  let seq: unknown
  try {
    seq = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { before?: unknown }).before
  } catch {
    seq = undefined
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    throw new errors.VALIDATION('cursor is not valid')
  }
  return seq
}
