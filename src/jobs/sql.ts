import type pg from 'pg'
import type { Queryable } from '../db/pool.js'
import { withTransaction } from '../db/transaction.js'
import { JOB_STATES, JOBS_CHANNEL, type Job, type JobState } from './types.js'

/**
 * The job queue's statements, one function each. Every change to a running job is guarded by
 * `locked_by = $worker AND state = 'running'`: a worker whose lease ran out and was taken over by
 * another worker changes nothing (0 rows), so it can never overwrite the new owner's outcome.
 */

interface JobRow {
  id: string
  kind: string
  payload: unknown
  state: JobState
  attempts: number
  max_attempts: number
  run_at: Date
  locked_by: string | null
  locked_until: Date | null
  last_error: string | null
  progress: unknown
  result: unknown
  registry: string | null
  unique_key: string | null
  created_at: Date
  updated_at: Date
  finished_at: Date | null
}

function rowToJob(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: row.run_at,
    lockedBy: row.locked_by,
    lockedUntil: row.locked_until,
    lastError: row.last_error,
    progress: row.progress,
    result: row.result,
    registry: row.registry,
    uniqueKey: row.unique_key,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  }
}

/** jsonb parameters are sent as JSON text: node-postgres would turn a JS array into a Postgres array. */
function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value)
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Long stacks or registry bodies are cut: last_error is for people, the logs keep the rest. */
const MAX_ERROR_LENGTH = 4000

export interface EnqueueInput {
  kind: string
  payload?: unknown
  /** Jobs naming a registry count against its cap (jobs.registryConcurrency). */
  registry?: string | null
  /** Idempotency key: a second enqueue with the same key returns the first job. */
  uniqueKey?: string | null
  /** Default: the column default, 5. Services pass config.jobs.maxAttempts. */
  maxAttempts?: number
  /** Not before this time (default: now). */
  runAt?: Date
}

export interface EnqueueResult {
  job: Job
  /** false when a job with the same uniqueKey existed: nothing was inserted and none notified. */
  created: boolean
}

// The NOTIFY is part of the INSERT's statement, so it belongs to the caller's transaction and is
// delivered only if and when that commits: a rolled back enqueue wakes nobody, and a worker woken
// by it always finds the row committed. The CTE holding pg_notify is volatile, so Postgres
// materialises it (runs it) rather than inlining it away.
const ENQUEUE = `
  WITH inserted AS (
    INSERT INTO jobs (kind, payload, registry, unique_key, max_attempts, run_at)
    VALUES ($1::text, coalesce($2::jsonb, '{}'::jsonb), $3::text, $4::text,
            coalesce($5::integer, 5), coalesce($6::timestamptz, now()))
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING *
  ), notified AS (
    SELECT pg_notify('${JOBS_CHANNEL}', kind) FROM inserted
  )
  SELECT inserted.*, (SELECT count(*) FROM notified)::int AS notified FROM inserted`

/**
 * Adds a job, or returns the existing one with the same `uniqueKey`. Pass the client of the
 * transaction that makes the change the job belongs to (an approval, say): the job then exists,
 * and workers are notified, only if that transaction commits (an outbox).
 */
export async function enqueueJob(db: Queryable, input: EnqueueInput): Promise<EnqueueResult> {
  const { rows } = await db.query<JobRow>(ENQUEUE, [
    input.kind,
    json(input.payload),
    input.registry ?? null,
    input.uniqueKey ?? null,
    input.maxAttempts ?? null,
    input.runAt ?? null,
  ])
  const inserted = rows[0]
  if (inserted) return { job: rowToJob(inserted), created: true }
  // ON CONFLICT waited for the other inserter to commit, so this statement's fresh snapshot (READ
  // COMMITTED) sees its row.
  const existing = await db.query<JobRow>('SELECT * FROM jobs WHERE unique_key = $1::text', [
    input.uniqueKey ?? null,
  ])
  const row = existing.rows[0]
  if (!row) throw new Error(`enqueue of ${input.kind} inserted nothing and found no job with its unique key`)
  return { job: rowToJob(row), created: false }
}

/**
 * Claims are serialised on this transaction-level advisory lock. The number is arbitrary but fixed:
 * it is the lock's identity across processes (7_462_010_xxx is Regent's range; 001 is migrations).
 */
export const CLAIM_LOCK_KEY = 7_462_010_004

export interface ClaimOptions {
  workerId: string
  kinds: string[]
  limit: number
  leaseMs: number
  /** Most running jobs per registry, across every worker of every replica. */
  registryConcurrency: number
}

// Candidates are due queued jobs and running jobs whose lease ran out (their worker died or
// stalled); both are locked FOR UPDATE SKIP LOCKED so a row another transaction is changing (a
// cancel, the late write of a stalled worker) is passed over, not waited for.
//
// The per-registry cap counts every `running` job of the registry, expired leases included. An
// expired job is either about to be reclaimed by this very query (which keeps the count unchanged:
// it is still one running job) or still heartbeated by a stalled worker. Counting only unexpired
// leases would let a stalled worker's late heartbeat revive a lease after a claimer had already
// given its slot away. A registry at its cap has its queued jobs excluded from the scan, so they
// cannot crowd other registries' jobs out of the LIMIT; below the cap, row_number() admits only as
// many queued jobs of each registry as it has free slots.
//
// statement_timestamp(), not now(): inside the claim transaction now() is the time of BEGIN, before
// the wait for the advisory lock.
const CLAIM = `
  WITH busy AS (
    SELECT registry, count(*)::int AS running
    FROM jobs
    WHERE state = 'running' AND registry IS NOT NULL
    GROUP BY registry
  ), candidates AS (
    SELECT j.id, j.state, j.registry, j.run_at
    FROM jobs j
    WHERE j.kind = ANY ($2::text[])
      AND j.attempts < j.max_attempts
      AND (
        (j.state = 'queued' AND j.run_at <= statement_timestamp()
          AND (j.registry IS NULL
               OR j.registry NOT IN (SELECT registry FROM busy WHERE running >= $5::integer)))
        OR (j.state = 'running' AND j.locked_until <= statement_timestamp())
      )
    ORDER BY j.run_at, j.id
    LIMIT $3::integer * 4
    FOR UPDATE OF j SKIP LOCKED
  ), ranked AS (
    SELECT c.id, c.state, c.registry, c.run_at, coalesce(b.running, 0) AS running,
           row_number() OVER (PARTITION BY c.registry, c.state ORDER BY c.run_at, c.id) AS nth
    FROM candidates c LEFT JOIN busy b ON b.registry = c.registry
  ), chosen AS (
    SELECT id FROM ranked
    WHERE registry IS NULL OR state = 'running' OR nth <= $5::integer - running
    ORDER BY run_at, id
    LIMIT $3::integer
  )
  UPDATE jobs j
  SET state = 'running',
      attempts = j.attempts + 1,
      locked_by = $1::text,
      locked_until = statement_timestamp() + $4::integer * interval '1 millisecond',
      updated_at = statement_timestamp()
  FROM chosen
  WHERE j.id = chosen.id
  RETURNING j.*`

/**
 * Claims up to `limit` due jobs of these kinds for this worker, under a lease of `leaseMs`.
 *
 * Takes a pool, not a client: a claim is always its own short transaction and must commit before
 * any handler starts (no transaction is held while a job runs).
 *
 * Why a single advisory lock: SKIP LOCKED alone keeps two claimers from taking the same row, but
 * not from each counting a registry's running jobs, each seeing one free slot, and both taking it
 * (two different rows, so nothing conflicts). Serialising claims closes that: the claim statement
 * runs after the lock is granted, so under READ COMMITTED its snapshot includes every claim
 * committed before it. The lock must be taken by an earlier statement than the claim, since a
 * statement's snapshot is taken when it starts. Claims are one statement of a few milliseconds, so
 * one lock for all registries costs little; a row per registry to lock (or SERIALIZABLE with
 * retries) would scale further but needs the registry list in the database. Everything else
 * (heartbeats, completion, enqueue) runs without it.
 */
export async function claimJobs(pool: pg.Pool, options: ClaimOptions): Promise<Job[]> {
  if (options.limit <= 0 || options.kinds.length === 0) return []
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [CLAIM_LOCK_KEY])
    const { rows } = await client.query<JobRow>(CLAIM, [
      options.workerId,
      options.kinds,
      options.limit,
      options.leaseMs,
      options.registryConcurrency,
    ])
    return rows.map(rowToJob)
  })
}

/**
 * Renews this worker's leases on `jobIds` and returns the ids it still holds. An id missing from
 * the answer was finished, released, or taken over by another worker after our lease ran out:
 * its handler must be aborted and its outcome not written.
 */
export async function heartbeat(
  db: Queryable,
  workerId: string,
  jobIds: string[],
  leaseMs: number,
): Promise<string[]> {
  if (jobIds.length === 0) return []
  const { rows } = await db.query<{ id: string }>(
    `UPDATE jobs SET locked_until = now() + $3::integer * interval '1 millisecond'
     WHERE id = ANY ($2::uuid[]) AND locked_by = $1::text AND state = 'running'
     RETURNING id`,
    [workerId, jobIds, leaseMs],
  )
  return rows.map((r) => r.id)
}

/** Marks the job succeeded with its result; undefined when this worker no longer holds it. */
export async function completeJob(
  db: Queryable,
  id: string,
  workerId: string,
  result?: unknown,
): Promise<Job | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs
     SET state = 'succeeded', result = $3::jsonb,
         locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now()
     WHERE id = $1::uuid AND locked_by = $2::text AND state = 'running'
     RETURNING *`,
    [id, workerId, json(result)],
  )
  return rows[0] ? rowToJob(rows[0]) : undefined
}

export interface FailInput {
  error: string
  /** false fails the job for good whatever attempts are left. */
  retryable: boolean
  /** How long a retry waits (backoff.ts). */
  backoffMs: number
}

export interface FailResult {
  /** `retry`: queued again at `job.runAt`; `failed`: for good (no attempts left, or not retryable). */
  outcome: 'retry' | 'failed'
  job: Job
}

/**
 * Records a failed attempt: queued again after `backoffMs`, or failed for good when attempts
 * reached max_attempts or the error is not retryable. Undefined when this worker no longer holds
 * the job. To write an audit event with a final failure, call it in that event's transaction.
 */
export async function failJob(
  db: Queryable,
  id: string,
  workerId: string,
  input: FailInput,
): Promise<FailResult | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs
     SET state = CASE WHEN $4::boolean AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
         run_at = CASE WHEN $4::boolean AND attempts < max_attempts
                       THEN now() + $5::integer * interval '1 millisecond' ELSE run_at END,
         finished_at = CASE WHEN $4::boolean AND attempts < max_attempts THEN NULL ELSE now() END,
         last_error = $3::text,
         locked_by = NULL, locked_until = NULL, updated_at = now()
     WHERE id = $1::uuid AND locked_by = $2::text AND state = 'running'
     RETURNING *`,
    [
      id,
      workerId,
      input.error.slice(0, MAX_ERROR_LENGTH),
      input.retryable,
      Math.max(0, Math.round(input.backoffMs)),
    ],
  )
  const row = rows[0]
  if (!row) return undefined
  return { outcome: row.state === 'failed' ? 'failed' : 'retry', job: rowToJob(row) }
}

/**
 * Graceful shutdown: hands jobs back to the queue at once, giving back the attempt their claim
 * took (the handler was stopped by us, not by the job). Notifies, so another replica picks them up
 * without waiting for its poll. Returns the ids released.
 */
export async function releaseJobs(db: Queryable, workerId: string, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return []
  const { rows } = await db.query<{ id: string }>(
    `WITH released AS (
       UPDATE jobs
       SET state = 'queued', attempts = greatest(attempts - 1, 0), run_at = now(),
           locked_by = NULL, locked_until = NULL, updated_at = now()
       WHERE id = ANY ($2::uuid[]) AND locked_by = $1::text AND state = 'running'
       RETURNING id, kind
     ), notified AS (
       SELECT pg_notify('${JOBS_CHANNEL}', kind) FROM (SELECT DISTINCT kind FROM released) k
     )
     SELECT id, (SELECT count(*) FROM notified)::int AS notified FROM released`,
    [workerId, ids],
  )
  return rows.map((r) => r.id)
}

/** Stores the handler's progress report; false when this worker no longer holds the job. */
export async function updateProgress(
  db: Queryable,
  id: string,
  workerId: string,
  progress: unknown,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE jobs SET progress = $3::jsonb, updated_at = now()
     WHERE id = $1::uuid AND locked_by = $2::text AND state = 'running'`,
    [id, workerId, json(progress)],
  )
  return rowCount === 1
}

export async function getJob(db: Queryable, id: string): Promise<Job | undefined> {
  if (!UUID.test(id)) return undefined
  const { rows } = await db.query<JobRow>('SELECT * FROM jobs WHERE id = $1::uuid', [id])
  return rows[0] ? rowToJob(rows[0]) : undefined
}

/** Cancels a job that has not started; undefined when it is not (or no longer) queued. */
export async function cancelJob(db: Queryable, id: string): Promise<Job | undefined> {
  if (!UUID.test(id)) return undefined
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now()
     WHERE id = $1::uuid AND state = 'queued'
     RETURNING *`,
    [id],
  )
  return rows[0] ? rowToJob(rows[0]) : undefined
}

export interface JobFilters {
  state?: JobState
  kind?: string
  registry?: string
  /** Default 100, at most 1000. */
  limit?: number
}

/** Jobs matching every given filter, newest first. */
export async function listJobs(db: Queryable, filters: JobFilters = {}): Promise<Job[]> {
  if (filters.state !== undefined && !JOB_STATES.includes(filters.state)) {
    throw new TypeError(`unknown job state: ${filters.state}`)
  }
  const limit = Math.min(1000, Math.max(1, Math.floor(filters.limit ?? 100)))
  const { rows } = await db.query<JobRow>(
    `SELECT * FROM jobs
     WHERE ($1::text IS NULL OR state = $1::text)
       AND ($2::text IS NULL OR kind = $2::text)
       AND ($3::text IS NULL OR registry = $3::text)
     ORDER BY created_at DESC, id DESC
     LIMIT $4::integer`,
    [filters.state ?? null, filters.kind ?? null, filters.registry ?? null, limit],
  )
  return rows.map(rowToJob)
}

/**
 * Fails, for good, running jobs of these kinds whose lease ran out on their last attempt: the
 * worker running the final attempt died, and reclaiming would exceed max_attempts. Call it in a
 * transaction and write each job's audit event (the worker's onFailed) in the same one.
 */
export async function failExpiredJobs(
  db: Queryable,
  options: { kinds: string[]; limit: number },
): Promise<Job[]> {
  if (options.kinds.length === 0) return []
  const { rows } = await db.query<JobRow>(
    `WITH expired AS (
       SELECT id FROM jobs
       WHERE state = 'running' AND locked_until <= now() AND attempts >= max_attempts
         AND kind = ANY ($1::text[])
       ORDER BY locked_until
       LIMIT $2::integer
       FOR UPDATE SKIP LOCKED
     )
     UPDATE jobs j
     SET state = 'failed',
         last_error = format('lease expired during the last attempt (%s of %s): worker %s stopped heartbeating',
                             j.attempts, j.max_attempts, j.locked_by),
         locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now()
     FROM expired
     WHERE j.id = expired.id
     RETURNING j.*`,
    [options.kinds, options.limit],
  )
  return rows.map(rowToJob)
}

export interface PurgeOptions {
  /** Finished before this: deleted. */
  finishedBefore: Date
  /** Beyond this many of the newest finished rows: deleted whatever their age. */
  keep: number
  /** At most this many rows per call (a short statement; the next run takes the rest). */
  limit: number
}

/**
 * Deletes finished jobs (succeeded, failed, cancelled) older than `finishedBefore` or beyond the
 * newest `keep`, oldest first; queued and running jobs are never touched. Returns how many went.
 * GET /v1/jobs/{id} then answers 404 for them; the request, run or delivery a job worked for keeps
 * its own outcome.
 */
export async function purgeFinishedJobs(db: Queryable, options: PurgeOptions): Promise<number> {
  const { rowCount } = await db.query(
    `WITH finished AS (
       SELECT id, coalesce(finished_at, updated_at) AS ended,
              row_number() OVER (ORDER BY coalesce(finished_at, updated_at) DESC, id DESC) AS nth
       FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')
     ), doomed AS (
       SELECT id FROM finished WHERE ended < $1::timestamptz OR nth > $2::integer
       ORDER BY ended LIMIT $3::integer
     )
     DELETE FROM jobs USING doomed WHERE jobs.id = doomed.id`,
    [options.finishedBefore, options.keep, options.limit],
  )
  return rowCount ?? 0
}

/** Jobs of these kinds running for the registry under a live lease (in-flight deletions, say). */
export async function runningJobsOf(db: Queryable, registry: string, kinds: string[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM jobs
     WHERE registry = $1::text AND kind = ANY ($2::text[]) AND state = 'running' AND locked_until > now()`,
    [registry, kinds],
  )
  return rows[0]?.n ?? 0
}

/**
 * A job that defers itself (waiting for a GC, a quiet period, the restore window) gives back the
 * attempt its claim took, as a graceful release does, so waiting never uses up its retries.
 * Guarded by the attempt number the claim gave it: it changes nothing once the job moved on.
 */
export async function giveBackAttempt(db: Queryable, job: Pick<Job, 'id' | 'attempts'>): Promise<void> {
  await db.query(
    `UPDATE jobs SET attempts = greatest(attempts - 1, 0), updated_at = now()
     WHERE id = $1::uuid AND state = 'running' AND attempts = $2::integer`,
    [job.id, job.attempts],
  )
}
