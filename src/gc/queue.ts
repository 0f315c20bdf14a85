import type pg from 'pg'
import { type AuditActor, appendAuditEvent } from '../audit/index.js'
import { enqueueJob, giveBackAttempt, type Job } from '../jobs/index.js'
import { systemActor } from '../lib/system.js'
import {
  activeRun,
  type GcRunRow,
  insertRun,
  type NewRun,
  pushBackRun,
  requestFollowup,
  setRunJob,
} from './sql.js'

/** The job kind that runs a GC run (src/gc/job.ts). */
export const GC_RUN = 'gc.run'
/** Attempts of a GC job: protocol failures are final at once; only crashes are retried. */
export const GC_MAX_ATTEMPTS = 3
/** The NOTIFY channel a GC run's progress is announced on (payload: the run id). */
export const GC_CHANNEL = 'regent_gc_runs'

/**
 * Enqueues the job that runs `run`, records it on the run, and writes `gc.requested`, all in the
 * caller's transaction: the run, its job and its audit event commit together or not at all.
 */
export async function enqueueRun(
  client: pg.PoolClient,
  run: GcRunRow,
  actor: AuditActor,
  details: Record<string, unknown> = {},
): Promise<GcRunRow> {
  const { job } = await enqueueJob(client, {
    kind: GC_RUN,
    payload: { runId: run.id },
    registry: run.registry,
    // One job per run and per takeover (a manual request taking over a queued run enqueues anew).
    uniqueKey: `gc-run:${run.id}:${run.trigger}:${run.job_id ?? 'first'}`,
    maxAttempts: GC_MAX_ATTEMPTS,
    runAt: run.not_before,
  })
  await setRunJob(client, run.id, job.id)
  await appendAuditEvent(client, {
    ...actor,
    action: 'gc.requested',
    outcome: 'queued',
    registry: run.registry,
    details: {
      runId: run.id,
      jobId: job.id,
      trigger: run.trigger,
      dryRun: run.dry_run,
      deleteUntagged: run.delete_untagged,
      notBefore: run.not_before.toISOString(),
      ...details,
    },
  })
  return { ...run, job_id: job.id }
}

export type CoalesceOutcome =
  /** A new coalesced run was queued for after the quiet period. */
  | 'queued'
  /** The queued coalesced run now waits for the quiet period from now. */
  | 'pushed-back'
  /** The running run can no longer collect it: another run follows when it ends. */
  | 'followup'
  /** A queued or running run will collect it anyway. */
  | 'covered'

/**
 * Coalescing: called in the transaction that finishes a deletion. Queues ONE coalesced GC run for
 * the registry, due after `quietPeriodMs`, or pushes the queued one's start back, so a burst of
 * deletions (200 tags in 5 requests, say) leads to one GC after the burst, not one per request.
 *
 * Lock order: this touches the gc_runs row before any audit event of the caller's transaction is
 * written (call it before appendAuditEvent): GC transactions lock their run row first and the
 * audit chain head last, and the same order here keeps the two from deadlocking.
 */
export async function scheduleCoalescedGc(
  client: pg.PoolClient,
  registry: string,
  quietPeriodMs: number,
): Promise<{ runId: string; outcome: CoalesceOutcome }> {
  const notBefore = new Date(Date.now() + quietPeriodMs)
  const wanted: NewRun = {
    registry,
    trigger: 'coalesced',
    requestedBy: 'regent',
    dryRun: false,
    deleteUntagged: false,
    notBefore,
  }
  for (let tries = 0; ; tries++) {
    const inserted = await insertRun(client, wanted)
    if (inserted) {
      const run = await enqueueRun(client, inserted, systemActor(`gc-${inserted.id}`), {
        quietPeriodMs,
      })
      return { runId: run.id, outcome: 'queued' }
    }
    const active = await activeRun(client, registry)
    // The active run ended between the two statements: insert again.
    if (!active) {
      if (tries < 3) continue
      throw new Error(`could not queue a coalesced GC of ${registry}`)
    }
    if (active.state === 'queued') {
      if (active.trigger !== 'coalesced') return { runId: active.id, outcome: 'covered' }
      await pushBackRun(client, active.id, notBefore)
      return { runId: active.id, outcome: 'pushed-back' }
    }
    // Running. Deletions cannot finish while a GC that deletes is past its `wait-deletions` step
    // (they wait for it), so this deletion's garbage is collected by it unless it is a dry run or
    // already collecting; then one more run follows it.
    if (active.dry_run || active.gc_started_at !== null) {
      await requestFollowup(client, active.id, notBefore)
      return { runId: active.id, outcome: 'followup' }
    }
    return { runId: active.id, outcome: 'covered' }
  }
}

/** Thrown by a job that waits (for a GC, a quiet period, a lease): retried after `retryAfterMs`. */
export class GcWaitError extends Error {
  readonly retryable = true
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message)
    this.name = 'GcWaitError'
  }
}

/** Gives the job's attempt back (waiting is not failing) and returns the error to throw. */
export async function deferJob(
  db: Pick<pg.Pool, 'query'>,
  job: Pick<Job, 'id' | 'attempts'>,
  message: string,
  retryAfterMs: number,
): Promise<GcWaitError> {
  await giveBackAttempt(db, job)
  return new GcWaitError(message, Math.max(0, Math.round(retryAfterMs)))
}
