import type { Queryable } from '../db/pool.js'

/**
 * Registry events' statements, one function each (tables in migrations/008). Batches go in as
 * arrays through `unnest`, so an envelope or 200 tags cost one statement per table, not one per row.
 */

/** A manifest push or pull, already checked; `timestamp` is the registry's RFC 3339 text. */
export interface ActivityEvent {
  repository: string
  digest: string
  tag: string | null
  action: 'push' | 'pull'
  timestamp: string
}

/** Inserts the ids; returns those not seen before (the others are redeliveries). */
export async function insertEventIds(db: Queryable, registry: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  const { rows } = await db.query<{ event_id: string }>(
    `INSERT INTO registry_event_ids (registry, event_id)
     SELECT $1, id FROM unnest($2::text[]) AS t(id)
     ON CONFLICT (registry, event_id) DO NOTHING
     RETURNING event_id`,
    [registry, ids],
  )
  return new Set(rows.map((r) => r.event_id))
}

/** Drops remembered ids received before `olderThan`; returns how many. */
export async function pruneEventIds(db: Queryable, registry: string, olderThan: Date): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM registry_event_ids WHERE registry = $1 AND received_at < $2::timestamptz',
    [registry, olderThan],
  )
  return rowCount ?? 0
}

function columns(events: ActivityEvent[]) {
  return [
    events.map((e) => e.repository),
    events.map((e) => e.digest),
    events.map((e) => e.tag),
    events.map((e) => e.action),
    events.map((e) => e.timestamp),
  ]
}

// The events are grouped per row first: one INSERT … ON CONFLICT DO UPDATE may not touch a row
// twice. Rows are written in key order so that concurrent envelopes (several registry replicas)
// lock them in the same order and cannot deadlock. LEAST and GREATEST skip NULLs, so a pull never erases a push time and vice versa, and an
// older event arriving late never moves a time backwards.
const EVENTS = `events AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
    AS e(repository, digest, tag, action, at)
)`

/** Every event updates its digest's row: a pull by tag pulled that digest too. */
export async function upsertDigestActivity(db: Queryable, registry: string, events: ActivityEvent[]) {
  if (events.length === 0) return
  await db.query(
    `WITH ${EVENTS}
     INSERT INTO registry_digest_activity AS a
       (registry, repository, digest, first_push_at, last_push_at, last_pull_at)
     SELECT $1, repository, digest,
            min(at) FILTER (WHERE action = 'push'),
            max(at) FILTER (WHERE action = 'push'),
            max(at) FILTER (WHERE action = 'pull')
     FROM events
     GROUP BY repository, digest
     ORDER BY repository, digest
     ON CONFLICT (registry, repository, digest) DO UPDATE SET
       first_push_at = LEAST(a.first_push_at, EXCLUDED.first_push_at),
       last_push_at = GREATEST(a.last_push_at, EXCLUDED.last_push_at),
       last_pull_at = GREATEST(a.last_pull_at, EXCLUDED.last_pull_at)`,
    [registry, ...columns(events)],
  )
}

/** Events naming a tag update its row; the tag's digest follows its latest push by timestamp. */
export async function upsertTagActivity(db: Queryable, registry: string, events: ActivityEvent[]) {
  const tagged = events.filter((e) => e.tag !== null)
  if (tagged.length === 0) return
  await db.query(
    `WITH ${EVENTS}
     INSERT INTO registry_tag_activity AS a
       (registry, repository, tag, digest, first_push_at, last_push_at, last_pull_at)
     SELECT $1, repository, tag,
            (array_agg(digest ORDER BY at DESC) FILTER (WHERE action = 'push'))[1],
            min(at) FILTER (WHERE action = 'push'),
            max(at) FILTER (WHERE action = 'push'),
            max(at) FILTER (WHERE action = 'pull')
     FROM events
     GROUP BY repository, tag
     ORDER BY repository, tag
     ON CONFLICT (registry, repository, tag) DO UPDATE SET
       digest = CASE
         WHEN EXCLUDED.last_push_at IS NOT NULL
          AND (a.last_push_at IS NULL OR EXCLUDED.last_push_at >= a.last_push_at)
         THEN EXCLUDED.digest
         ELSE a.digest
       END,
       first_push_at = LEAST(a.first_push_at, EXCLUDED.first_push_at),
       last_push_at = GREATEST(a.last_push_at, EXCLUDED.last_push_at),
       last_pull_at = GREATEST(a.last_pull_at, EXCLUDED.last_pull_at)`,
    [registry, ...columns(tagged)],
  )
}

export interface ActivityRow {
  kind: 'digest' | 'tag'
  /** The digest of a digest row, the tag of a tag row. */
  key: string
  /** A tag row's latest pushed digest; NULL for digest rows. */
  digest: string | null
  first_push_at: Date | null
  last_push_at: Date | null
  last_pull_at: Date | null
}

/** Both tables' rows for one repository, in one round trip. */
export async function selectRepositoryActivity(
  db: Queryable,
  registry: string,
  repository: string,
): Promise<ActivityRow[]> {
  const { rows } = await db.query<ActivityRow>(
    `SELECT 'digest' AS kind, digest AS key, NULL::text AS digest, first_push_at, last_push_at, last_pull_at
       FROM registry_digest_activity WHERE registry = $1 AND repository = $2
     UNION ALL
     SELECT 'tag', tag, digest, first_push_at, last_push_at, last_pull_at
       FROM registry_tag_activity WHERE registry = $1 AND repository = $2`,
    [registry, repository],
  )
  return rows
}

/**
 * Inserts the sightings not yet recorded and returns first_seen_at of every (tag, digest) given:
 * a tag moved onto another digest is a new sighting. Both halves
 * of the UNION read in one statement: the inserted rows come back through RETURNING, the old ones
 * from the table (the statement's snapshot does not show its own inserts, so none is counted
 * twice). A tag another transaction inserted after that snapshot is in neither half; the caller
 * reads those again.
 */
export async function upsertSightings(
  db: Queryable,
  registry: string,
  repository: string,
  tags: { tag: string; digest: string }[],
): Promise<{ tag: string; first_seen_at: Date }[]> {
  const { rows } = await db.query<{ tag: string; first_seen_at: Date }>(
    `WITH given AS (
       SELECT * FROM unnest($3::text[], $4::text[]) AS g(tag, digest)
     ), inserted AS (
       INSERT INTO registry_tag_sightings (registry, repository, tag, digest)
       SELECT $1, $2, tag, digest FROM given
       ON CONFLICT (registry, repository, tag, digest) DO NOTHING
       RETURNING tag, first_seen_at
     )
     SELECT tag, first_seen_at FROM inserted
     UNION ALL
     SELECT s.tag, s.first_seen_at
       FROM registry_tag_sightings s JOIN given g ON g.tag = s.tag AND g.digest = s.digest
      WHERE s.registry = $1 AND s.repository = $2`,
    [registry, repository, tags.map((t) => t.tag), tags.map((t) => t.digest)],
  )
  return rows
}

/** first_seen_at of the given (tag, digest) pairs, as committed now. */
export async function selectSightings(
  db: Queryable,
  registry: string,
  repository: string,
  tags: { tag: string; digest: string }[],
): Promise<{ tag: string; first_seen_at: Date }[]> {
  const { rows } = await db.query<{ tag: string; first_seen_at: Date }>(
    `SELECT s.tag, s.first_seen_at FROM registry_tag_sightings s
       JOIN unnest($3::text[], $4::text[]) AS g(tag, digest) ON g.tag = s.tag AND g.digest = s.digest
      WHERE s.registry = $1 AND s.repository = $2`,
    [registry, repository, tags.map((t) => t.tag), tags.map((t) => t.digest)],
  )
  return rows
}

/** The last recorded pull of each digest (digests never pulled are left out). */
export async function selectLastPulls(
  db: Queryable,
  registry: string,
  repository: string,
  digests: string[],
): Promise<{ digest: string; last_pull_at: Date }[]> {
  const { rows } = await db.query<{ digest: string; last_pull_at: Date }>(
    `SELECT digest, last_pull_at FROM registry_digest_activity
     WHERE registry = $1 AND repository = $2 AND digest = ANY($3::text[]) AND last_pull_at IS NOT NULL`,
    [registry, repository, digests],
  )
  return rows
}
