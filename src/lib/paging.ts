import { errors } from '../errors.js'
import { decodeCursor, encodeCursor } from './cursor.js'

/**
 * Keyset paging for every list ordered newest first by `(created_at, id)`. Postgres keeps
 * microseconds and a JS Date only milliseconds, so the cursor carries the timestamp exactly as
 * Postgres writes it (select `CREATED_KEY` beside the row), never a Date's ISO text: rows created
 * within one millisecond would otherwise fall between two pages and never be listed.
 */

/** Select this beside a row's columns; the SQL compares `(created_at, id) < ($at::timestamptz, $id::uuid)`. */
export const CREATED_KEY = `to_json(created_at) #>> '{}' AS created_key`

export interface KeysetRow {
  id: string
  /** created_at as text with all its digits (see CREATED_KEY). */
  created_key: string
}

/** The position after which the next page starts. */
export interface Keyset {
  createdAt: string
  id: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// What to_json(timestamptz) writes: ISO 8601 with up to 6 fraction digits and an offset.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:\d{2})?|Z)$/

/**
 * The keyset a `nextCursor` of ours names, or undefined for the first page. A cursor that decodes
 * but does not hold a timestamp and an id is refused here, before Postgres would fail casting it.
 */
export function decodeKeyset(cursor: string | undefined): Keyset | undefined {
  const value = decodeCursor(cursor, ['createdAt', 'id'])
  if (value === undefined) return undefined
  if (!TIMESTAMP.test(value.createdAt) || !UUID.test(value.id)) throw new errors.INVALID_CURSOR()
  return { createdAt: value.createdAt, id: value.id }
}

/**
 * One page from `limit + 1` rows fetched after the cursor: the extra row only tells whether a
 * next page exists. The next cursor is the last row shown.
 */
export function keysetPage<R extends KeysetRow>(
  rows: R[],
  limit: number,
): { rows: R[]; nextCursor: string | null } {
  const shown = rows.slice(0, limit)
  const last = shown.at(-1)
  return {
    rows: shown,
    nextCursor:
      rows.length > limit && last ? encodeCursor({ createdAt: last.created_key, id: last.id }) : null,
  }
}
