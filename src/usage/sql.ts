import type pg from 'pg'
import type { Queryable } from '../db/pool.js'
import type { CollectedReference } from './references.js'

/** The statements of usage sources and their references (migrations/012), one function each. */

export interface SourceRow {
  name: string
  kind: string
  last_started_at: Date | null
  last_finished_at: Date | null
  last_duration_ms: number | null
  last_outcome: 'succeeded' | 'failed' | null
  last_success_at: Date | null
  last_error: string | null
  last_error_at: Date | null
  counts: Record<string, number>
  /** Milliseconds since last_success_at by the database's clock; null when never synced. */
  age_ms: number | null
}

export interface ReferenceRow {
  id: string
  source: string
  registry: string
  repository: string
  digest: string | null
  tag: string | null
  cluster: string
  namespace: string
  kind: string
  name: string
  container: string
  owner_kind: string | null
  owner_name: string | null
  running: boolean
  pods: number
  first_seen_at: Date
  last_seen_at: Date
}

/** A reference as a verdict reads it. */
export interface PlaceRow {
  source: string
  cluster: string
  namespace: string
  kind: string
  name: string
  container: string
  digest: string | null
  tag: string | null
  running: boolean
  pods: number
  first_seen_at: string
}

export interface UsageLookupRow {
  places: PlaceRow[]
  sources: { name: string; age_ms: number | null }[]
}

/** Marks a sync as started; returns its start time by the database's clock. */
export async function startSync(db: Queryable, name: string, kind: string): Promise<Date> {
  const { rows } = await db.query<{ started: Date }>(
    `INSERT INTO usage_sources (name, kind, last_started_at) VALUES ($1, $2, now())
     ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, last_started_at = now()
     RETURNING last_started_at AS started`,
    [name, kind],
  )
  return (rows[0] as { started: Date }).started
}

/**
 * Locks the source's status row for the replacing transaction and returns the start of its last
 * successful sync: a sync that started before it lost the race and must not write.
 */
export async function lockSource(client: pg.PoolClient, name: string): Promise<Date | null> {
  const { rows } = await client.query<{ last_success_at: Date | null }>(
    'SELECT last_success_at FROM usage_sources WHERE name = $1 FOR UPDATE',
    [name],
  )
  return rows[0]?.last_success_at ?? null
}

const column = <K extends keyof CollectedReference>(rows: CollectedReference[], key: K) =>
  rows.map((r) => r[key])

/**
 * Upserts one batch of a sync's references: new places get first_seen_at, known ones keep it; all
 * get last_seen_at = the transaction's now(), which is how the sync's end tells seen from unseen.
 */
export async function upsertReferences(
  client: pg.PoolClient,
  source: string,
  rows: CollectedReference[],
): Promise<void> {
  if (rows.length === 0) return
  await client.query(
    `INSERT INTO usage_references AS u
       (source, registry, repository, digest, tag, cluster, namespace, kind, name, container,
        owner_kind, owner_name, running, pods, first_seen_at, last_seen_at)
     SELECT $1, registry, repository, digest, tag, cluster, namespace, kind, name, container,
            owner_kind, owner_name, running, pods, now(), now()
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                 $9::text[], $10::text[], $11::text[], $12::text[], $13::boolean[], $14::integer[])
       AS r(registry, repository, digest, tag, cluster, namespace, kind, name, container,
            owner_kind, owner_name, running, pods)
     ON CONFLICT ON CONSTRAINT usage_references_place DO UPDATE SET
       owner_kind = EXCLUDED.owner_kind, owner_name = EXCLUDED.owner_name,
       running = EXCLUDED.running, pods = EXCLUDED.pods, last_seen_at = now()`,
    [
      source,
      column(rows, 'registry'),
      column(rows, 'repository'),
      column(rows, 'digest'),
      column(rows, 'tag'),
      column(rows, 'cluster'),
      column(rows, 'namespace'),
      column(rows, 'kind'),
      column(rows, 'name'),
      column(rows, 'container'),
      column(rows, 'ownerKind'),
      column(rows, 'ownerName'),
      column(rows, 'running'),
      column(rows, 'pods'),
    ],
  )
}

/** The end of a successful sync: the source's places it did not see are gone. */
export async function deleteUnseen(client: pg.PoolClient, source: string): Promise<number> {
  const { rowCount } = await client.query(
    'DELETE FROM usage_references WHERE source = $1 AND last_seen_at < now()',
    [source],
  )
  return rowCount ?? 0
}

export async function recordSuccess(
  db: Queryable,
  name: string,
  startedAt: Date,
  counts: Record<string, number>,
): Promise<void> {
  await db.query(
    `UPDATE usage_sources
     SET last_finished_at = clock_timestamp(),
         last_duration_ms = (extract(epoch FROM clock_timestamp() - $2::timestamptz) * 1000)::integer,
         last_outcome = 'succeeded', last_success_at = $2::timestamptz, counts = $3::jsonb
     WHERE name = $1`,
    [name, startedAt, JSON.stringify(counts)],
  )
}

/** A failed sync changes no reference; only the status says what went wrong. */
export async function recordFailure(
  db: Queryable,
  name: string,
  startedAt: Date,
  error: string,
): Promise<void> {
  await db.query(
    `UPDATE usage_sources
     SET last_finished_at = clock_timestamp(),
         last_duration_ms = (extract(epoch FROM clock_timestamp() - $2::timestamptz) * 1000)::integer,
         last_outcome = 'failed', last_error = $3::text, last_error_at = clock_timestamp()
     WHERE name = $1`,
    [name, startedAt, error.slice(0, 2000)],
  )
}

export async function selectSources(db: Queryable, names: string[]): Promise<SourceRow[]> {
  const { rows } = await db.query<SourceRow>(
    `SELECT *, (extract(epoch FROM now() - last_success_at) * 1000)::float8 AS age_ms
     FROM usage_sources WHERE name = ANY($1::text[])`,
    [names],
  )
  return rows
}

/**
 * Everything a verdict needs, in one round trip: the places naming any candidate digest or tag
 * (a workload's pods are one place with a count, since the sync stores them so), and how old each
 * source's data is.
 */
export async function selectUsage(
  db: Queryable,
  input: { registry: string; repository: string; digests: string[]; tags: string[]; sources: string[] },
): Promise<UsageLookupRow> {
  const { rows } = await db.query<UsageLookupRow>(
    // The candidates are joined, not tested with `= ANY`: a row filter against a 1,000-element
    // array compares linearly per row, a hash join does not. A row names a digest or a tag, never
    // both (a reference with a digest pulls the digest), so the two halves never meet.
    `WITH digests AS (
       SELECT DISTINCT d AS digest FROM unnest($3::text[]) AS d
     ), tags AS (
       SELECT DISTINCT t AS tag FROM unnest($4::text[]) AS t
     ), places AS (
       SELECT u.source, u.cluster, u.namespace, u.kind, u.name, u.container, u.digest, u.tag, u.running,
              u.pods, u.first_seen_at
       FROM usage_references u JOIN digests USING (digest)
       WHERE u.registry = $1 AND u.repository = $2 AND u.source = ANY($5::text[])
       UNION ALL
       SELECT u.source, u.cluster, u.namespace, u.kind, u.name, u.container, u.digest, u.tag, u.running,
              u.pods, u.first_seen_at
       FROM usage_references u JOIN tags USING (tag)
       WHERE u.registry = $1 AND u.repository = $2 AND u.source = ANY($5::text[]) AND u.digest IS NULL
     )
     SELECT
       (SELECT coalesce(json_agg(p), '[]'::json) FROM places p) AS places,
       (SELECT coalesce(json_agg(json_build_object(
                 'name', name,
                 'age_ms', (extract(epoch FROM now() - last_success_at) * 1000)::float8)), '[]'::json)
          FROM usage_sources WHERE name = ANY($5::text[])) AS sources`,
    [input.registry, input.repository, input.digests, input.tags, input.sources],
  )
  return rows[0] as UsageLookupRow
}

export interface ReferenceFilters {
  registry: string
  repository?: string
  digest?: string
  tag?: string
  source?: string
  sources: string[]
  /** Rows after this id (keyset paging). */
  after?: string
  limit: number
}

export async function listReferences(db: Queryable, f: ReferenceFilters): Promise<ReferenceRow[]> {
  const { rows } = await db.query<ReferenceRow>(
    `SELECT id::text, source, registry, repository, digest, tag, cluster, namespace, kind, name, container,
            owner_kind, owner_name, running, pods, first_seen_at, last_seen_at
     FROM usage_references
     WHERE registry = $1 AND source = ANY($2::text[])
       AND ($3::text IS NULL OR repository = $3)
       AND ($4::text IS NULL OR digest = $4)
       AND ($5::text IS NULL OR tag = $5)
       AND ($6::text IS NULL OR source = $6)
       AND ($7::bigint IS NULL OR id > $7::bigint)
     ORDER BY id
     LIMIT $8::integer`,
    [
      f.registry,
      f.sources,
      f.repository ?? null,
      f.digest ?? null,
      f.tag ?? null,
      f.source ?? null,
      f.after ?? null,
      f.limit,
    ],
  )
  return rows
}
