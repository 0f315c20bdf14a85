import type { Queryable } from '../db/pool.js'
import { CREATED_KEY, type Keyset, type KeysetRow } from '../lib/paging.js'

/** The statements of GC runs, one function each (migration 007). */

export const GC_TRIGGERS = ['manual', 'coalesced', 'schedule'] as const
export type GcTrigger = (typeof GC_TRIGGERS)[number]
export const GC_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type GcState = (typeof GC_STATES)[number]

export interface GcStep {
  name: string
  attempt: number
  startedAt: string
  finishedAt: string | null
  ok: boolean | null
  /** The step's last output lines (at most STEP_OUTPUT_BYTES), or what it found. */
  output: string
}

export interface GcRunRow {
  id: string
  registry: string
  trigger: GcTrigger
  requested_by: string
  requested_on_behalf_of: string | null
  dry_run: boolean
  delete_untagged: boolean
  state: GcState
  failed_step: string | null
  error: string | null
  steps: GcStep[]
  marked_blobs: string | null
  eligible_blobs: string | null
  eligible_manifests: string | null
  eligible_bytes: string | null
  collected_blobs: string | null
  collected_manifests: string | null
  bytes_before: string | null
  bytes_after: string | null
  bytes_reported_freed: string | null
  log: string
  job_id: string | null
  not_before: Date
  followup_after: Date | null
  lease_owner: string | null
  lease_until: Date | null
  gc_started_at: Date | null
  created_at: Date
  updated_at: Date
  started_at: Date | null
  finished_at: Date | null
}

/** A bigint column as pg returns it (a string), as a number; null stays null. */
export function bigintOrNull(value: string | null): number | null {
  return value === null ? null : Number(value)
}

/** Space freed: the storage folder before − after, else what the collector said it freed. */
export function freed(
  run: Pick<GcRunRow, 'bytes_before' | 'bytes_after' | 'bytes_reported_freed'>,
): number | null {
  if (run.bytes_before !== null && run.bytes_after !== null)
    return Number(run.bytes_before) - Number(run.bytes_after)
  return bigintOrNull(run.bytes_reported_freed)
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface NewRun {
  registry: string
  trigger: GcTrigger
  requestedBy: string
  onBehalfOf?: string | null
  dryRun: boolean
  deleteUntagged: boolean
  notBefore?: Date
}

/**
 * Inserts a queued run unless the registry already has a queued or running one (the partial unique
 * index gc_runs_one_active): then nothing is inserted and undefined returned. Concurrent inserters
 * from several replicas wait on each other at the index; exactly one wins.
 */
export async function insertRun(db: Queryable, run: NewRun): Promise<GcRunRow | undefined> {
  const { rows } = await db.query<GcRunRow>(
    `INSERT INTO gc_runs (registry, trigger, requested_by, requested_on_behalf_of, dry_run, delete_untagged, not_before)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::boolean, $6::boolean, coalesce($7::timestamptz, now()))
     ON CONFLICT (registry) WHERE state IN ('queued', 'running') DO NOTHING
     RETURNING *`,
    [
      run.registry,
      run.trigger,
      run.requestedBy,
      run.onBehalfOf ?? null,
      run.dryRun,
      run.deleteUntagged,
      run.notBefore ?? null,
    ],
  )
  return rows[0]
}

/** The registry's queued or running run, if any. */
export async function activeRun(
  db: Queryable,
  registry: string,
  options: { forUpdate?: boolean } = {},
): Promise<GcRunRow | undefined> {
  const { rows } = await db.query<GcRunRow>(
    `SELECT * FROM gc_runs WHERE registry = $1::text AND state IN ('queued', 'running')
     ${options.forUpdate ? 'FOR UPDATE' : ''}`,
    [registry],
  )
  return rows[0]
}

export async function getRun(
  db: Queryable,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<GcRunRow | undefined> {
  if (!UUID.test(id)) return undefined
  const { rows } = await db.query<GcRunRow>(
    `SELECT * FROM gc_runs WHERE id = $1::uuid ${options.forUpdate ? 'FOR UPDATE' : ''}`,
    [id],
  )
  return rows[0]
}

export async function setRunJob(db: Queryable, id: string, jobId: string): Promise<void> {
  await db.query('UPDATE gc_runs SET job_id = $2::uuid, updated_at = now() WHERE id = $1::uuid', [id, jobId])
}

export interface RunFilters {
  registry?: string
  state?: GcState
}

/** Newest first; `after` is the (createdAt, id) of the last row of the previous page. */
export async function listRuns(
  db: Queryable,
  filters: RunFilters,
  page: { limit: number; after?: Keyset },
): Promise<(GcRunRow & KeysetRow)[]> {
  const { rows } = await db.query<GcRunRow & KeysetRow>(
    `SELECT *, ${CREATED_KEY} FROM gc_runs
     WHERE ($1::text IS NULL OR registry = $1::text)
       AND ($2::text IS NULL OR state = $2::text)
       AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid))
     ORDER BY created_at DESC, id DESC
     LIMIT $5::integer`,
    [
      filters.registry ?? null,
      filters.state ?? null,
      page.after?.createdAt ?? null,
      page.after?.id ?? null,
      page.limit,
    ],
  )
  return rows
}

/** Coalescing: a queued run waits at least until `at` (never earlier than it already did). */
export async function pushBackRun(db: Queryable, id: string, at: Date): Promise<void> {
  await db.query(
    `UPDATE gc_runs SET not_before = greatest(not_before, $2::timestamptz), updated_at = now()
     WHERE id = $1::uuid AND state = 'queued'`,
    [id, at],
  )
}

/** A running run that can no longer collect new garbage asks for another run once it ends. */
export async function requestFollowup(db: Queryable, id: string, at: Date): Promise<void> {
  await db.query(
    `UPDATE gc_runs SET followup_after = greatest(coalesce(followup_after, $2::timestamptz), $2::timestamptz),
       updated_at = now()
     WHERE id = $1::uuid AND state = 'running'`,
    [id, at],
  )
}

/**
 * A manual request takes over a queued coalesced or scheduled run: it runs now, as asked. A dry
 * run taking one over keeps the real collection owed: it follows the dry run (followup_after), no
 * earlier than it was due.
 */
export async function takeOverRun(
  db: Queryable,
  id: string,
  by: { requestedBy: string; onBehalfOf: string | null; dryRun: boolean; deleteUntagged: boolean },
): Promise<GcRunRow | undefined> {
  const { rows } = await db.query<GcRunRow>(
    `UPDATE gc_runs SET trigger = 'manual', requested_by = $2::text, requested_on_behalf_of = $3::text,
       dry_run = $4::boolean, delete_untagged = $5::boolean,
       followup_after = CASE WHEN $4::boolean THEN greatest(not_before, now()) ELSE followup_after END,
       not_before = now(), updated_at = now()
     WHERE id = $1::uuid AND state = 'queued' AND NOT dry_run
     RETURNING *`,
    [id, by.requestedBy, by.onBehalfOf, by.dryRun, by.deleteUntagged],
  )
  return rows[0]
}

/**
 * Starts (or, after a crash, resumes) a run under a lease held by `owner`: a queued run becomes
 * running; a running run is taken only when its lease ran out (its worker died). Undefined when
 * the run is not ours to run now: finished, or running under a live lease.
 */
export async function acquireRun(
  db: Queryable,
  id: string,
  jobId: string,
  owner: string,
  leaseMs: number,
): Promise<GcRunRow | undefined> {
  // job_id: a job superseded by a manual takeover (takeOverRun) must not start the run; the guard
  // is re-checked after waiting for the takeover's row lock, so exactly one of them wins.
  const { rows } = await db.query<GcRunRow>(
    `UPDATE gc_runs
     SET state = 'running', lease_owner = $3::text,
         lease_until = now() + $4::integer * interval '1 millisecond',
         started_at = coalesce(started_at, now()), updated_at = now()
     WHERE id = $1::uuid AND job_id = $2::uuid
       AND (state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until <= now())))
     RETURNING *`,
    [id, jobId, owner, leaseMs],
  )
  return rows[0]
}

/** Renews the run's lease; false when it is no longer ours (taken over, or finished). */
export async function renewRunLease(
  db: Queryable,
  id: string,
  owner: string,
  leaseMs: number,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE gc_runs SET lease_until = now() + $3::integer * interval '1 millisecond'
     WHERE id = $1::uuid AND lease_owner = $2::text AND state = 'running'`,
    [id, owner, leaseMs],
  )
  return rowCount === 1
}

/** Gives the lease up at once (shutdown), so another replica resumes without waiting it out. */
export async function releaseRunLease(db: Queryable, id: string, owner: string): Promise<void> {
  await db.query(
    `UPDATE gc_runs SET lease_until = now(), updated_at = now()
     WHERE id = $1::uuid AND lease_owner = $2::text AND state = 'running'`,
    [id, owner],
  )
}

export interface RunNumbers {
  markedBlobs?: number | null
  eligibleBlobs?: number | null
  eligibleManifests?: number | null
  eligibleBytes?: number | null
  collectedBlobs?: number | null
  collectedManifests?: number | null
  bytesBefore?: number | null
  bytesAfter?: number | null
  bytesReportedFreed?: number | null
}

/** Stores the steps, the log and any numbers learnt; false when the run is no longer ours. */
export async function recordProgress(
  db: Queryable,
  id: string,
  owner: string,
  progress: { steps: GcStep[]; log: string; numbers?: RunNumbers },
): Promise<boolean> {
  const n = progress.numbers ?? {}
  const { rowCount } = await db.query(
    `UPDATE gc_runs SET steps = $3::jsonb, log = $4::text,
       marked_blobs = coalesce($5::bigint, marked_blobs),
       eligible_blobs = coalesce($6::bigint, eligible_blobs),
       eligible_manifests = coalesce($7::bigint, eligible_manifests),
       eligible_bytes = coalesce($8::bigint, eligible_bytes),
       collected_blobs = coalesce($9::bigint, collected_blobs),
       collected_manifests = coalesce($10::bigint, collected_manifests),
       bytes_before = coalesce($11::bigint, bytes_before),
       bytes_after = coalesce($12::bigint, bytes_after),
       bytes_reported_freed = coalesce($13::bigint, bytes_reported_freed),
       updated_at = now()
     WHERE id = $1::uuid AND lease_owner = $2::text AND state = 'running'`,
    [
      id,
      owner,
      JSON.stringify(progress.steps),
      progress.log,
      n.markedBlobs ?? null,
      n.eligibleBlobs ?? null,
      n.eligibleManifests ?? null,
      n.eligibleBytes ?? null,
      n.collectedBlobs ?? null,
      n.collectedManifests ?? null,
      n.bytesBefore ?? null,
      n.bytesAfter ?? null,
      n.bytesReportedFreed ?? null,
    ],
  )
  return rowCount === 1
}

/** Records that the GC step begins; returns its time (the restore window closes at it). */
export async function markGcStarted(db: Queryable, id: string, owner: string): Promise<Date | undefined> {
  const { rows } = await db.query<{ gc_started_at: Date }>(
    `UPDATE gc_runs SET gc_started_at = coalesce(gc_started_at, now()), updated_at = now()
     WHERE id = $1::uuid AND lease_owner = $2::text AND state = 'running'
     RETURNING gc_started_at`,
    [id, owner],
  )
  return rows[0]?.gc_started_at
}

/**
 * Ends a run (running → succeeded | failed, or queued → failed when its job gave up). Returns the
 * row, or undefined when it had already ended.
 */
export async function finishRun(
  db: Queryable,
  id: string,
  outcome: { state: 'succeeded' | 'failed'; failedStep?: string | null; error?: string | null },
  /** The lease holder ending it: nothing changes if another worker took the run over. */
  owner?: string,
): Promise<GcRunRow | undefined> {
  const { rows } = await db.query<GcRunRow>(
    `UPDATE gc_runs SET state = $2::text, failed_step = $3::text, error = $4::text,
       lease_owner = NULL, lease_until = NULL, finished_at = now(), updated_at = now()
     WHERE id = $1::uuid AND state IN ('queued', 'running')
       AND ($5::text IS NULL OR lease_owner = $5::text)
     RETURNING *`,
    [id, outcome.state, outcome.failedStep ?? null, outcome.error?.slice(0, 4000) ?? null, owner ?? null],
  )
  return rows[0]
}

/**
 * True while a GC that deletes (not a dry run) runs on the registry: deletion jobs of that
 * registry must wait. The GC, once running, also waits for deletion jobs already under way, so
 * whichever of the two commits first, the other one sees it (see handler.ts, step `wait`).
 */
export async function gcBlocksDeletions(db: Queryable, registry: string): Promise<boolean> {
  const { rows } = await db.query<{ blocked: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM gc_runs WHERE registry = $1::text AND state = 'running' AND NOT dry_run) AS blocked`,
    [registry],
  )
  return rows[0]?.blocked ?? false
}

/** Claims a cron slot; true for the one replica whose insert won. */
export async function claimSlot(db: Queryable, registry: string, slot: Date): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO gc_schedule_slots (registry, slot, outcome) VALUES ($1::text, $2::timestamptz, 'claimed')
     ON CONFLICT (registry, slot) DO NOTHING`,
    [registry, slot],
  )
  return rowCount === 1
}

export async function setSlotOutcome(
  db: Queryable,
  registry: string,
  slot: Date,
  outcome: { runId: string | null; outcome: string },
): Promise<void> {
  await db.query(
    `UPDATE gc_schedule_slots SET run_id = $3::uuid, outcome = $4::text
     WHERE registry = $1::text AND slot = $2::timestamptz`,
    [registry, slot, outcome.runId, outcome.outcome],
  )
}
