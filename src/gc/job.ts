import type pg from 'pg'
import { Type } from 'typebox'
import { appendAuditEvent } from '../audit/index.js'
import { newestRestorableDeletion } from '../deletions/index.js'
import { type Job, type JobContext, type JobKind, NonRetryableJobError } from '../jobs/index.js'
import type { RegistrySet } from '../registries/registry-set.js'
import type { GcConfig } from './config-schema.js'
import { endRun, failRun, runActor } from './end-run.js'
import { type LeaseTiming, RunLease, takeRunLease } from './lease.js'
import { RunProgress } from './progress.js'
import { type ProtocolDeps, RunProtocol } from './protocol.js'
import { deferJob, GC_RUN } from './queue.js'
import { type GcRunRow, getRun, pushBackRun } from './sql.js'

/** What the `gc.run` job needs: the protocol's needs, the run's lease timing, the registries. */
export interface GcJobDeps extends ProtocolDeps, LeaseTiming {
  registries: RegistrySet
}

/** What a `gc.run` job carries. */
export const GcRunPayloadSchema = Type.Object({ runId: Type.String() })

/**
 * The `gc.run` job kind; when the queue gives up on it, the run ends failed at its open step, in
 * the transaction that fails the job. GC runs are listed for every role, so are their jobs.
 */
export function gcJob(deps: GcJobDeps): JobKind<typeof GcRunPayloadSchema> {
  return {
    kind: GC_RUN,
    payload: GcRunPayloadSchema,
    run: ({ runId }, job, ctx) => runGc(deps, runId, job, ctx),
    onFailed: (client, { runId }, job) => failRun(client, runId, job, deps.notifier),
    visibleTo: async (principal) => principal.roles.length > 0,
  }
}

/**
 * The `gc.run` job: a run that may start now (its quiet period and the restore window are over)
 * is taken under its lease and its safety protocol runs (protocol.ts).
 */
async function runGc(deps: GcJobDeps, runId: string, job: Job, ctx: JobContext) {
  const run = await getRun(deps.pool, runId)
  if (!run) throw new NonRetryableJobError(`GC run ${runId} does not exist`)
  if (run.job_id !== job.id) return { skipped: 'superseded by a later request for the same run' }
  if (run.state !== 'queued' && run.state !== 'running') return { skipped: run.state }

  const configured = deps.registries.list().find((r) => r.config.name === run.registry)
  const gc = configured?.config.gc
  if (!configured || !gc) {
    await endRun(deps, run, {
      state: 'failed',
      failedStep: 'config',
      error: 'the registry has no gc config',
    })
    throw new NonRetryableJobError(`registry ${run.registry} has no gc config`)
  }

  if (run.state === 'queued') {
    const wait = await startDelay(deps.pool, run, gc)
    if (wait) throw await deferJob(deps.pool, job, wait.reason, wait.ms)
  }

  const taken = await takeRunLease(deps.pool, run, job, deps.leaseMs, async (client, row) => {
    await appendAuditEvent(client, {
      ...runActor(row),
      action: run.state === 'running' ? 'gc.resumed' : 'gc.started',
      outcome: 'running',
      registry: row.registry,
      details: {
        runId: row.id,
        jobId: job.id,
        attempt: job.attempts,
        trigger: row.trigger,
        dryRun: row.dry_run,
      },
    })
  })
  if ('skipped' in taken) return taken
  await deps.notify?.(run.id).catch(() => {})
  const lease = new RunLease(deps.pool, taken.row.id, taken.owner, deps, ctx.log)
  const progress = new RunProgress(taken.row, { pool: deps.pool, lease, notify: deps.notify, log: ctx.log })
  const protocol = new RunProtocol(deps, taken.row, gc, configured.client, job, lease, progress)
  return lease.holding(ctx.signal, () => protocol.run())
}

/**
 * Why a queued run may not start yet, and for how long: the coalescing quiet period, or the
 * restore window (GC waits until the newest restorable deletion is older than restoreWindowMs).
 */
async function startDelay(
  pool: pg.Pool,
  run: GcRunRow,
  gc: GcConfig,
): Promise<{ ms: number; reason: string } | undefined> {
  // Real time, not a test clock: the job queue that brings the run back keeps the database's time.
  const now = Date.now()
  if (run.not_before.getTime() > now) {
    return { ms: run.not_before.getTime() - now, reason: `waiting until ${run.not_before.toISOString()}` }
  }
  if (!run.dry_run && gc.restoreWindowMs) {
    const newest = await newestRestorableDeletion(pool, run.registry)
    const opens = newest ? newest.getTime() + gc.restoreWindowMs : 0
    if (opens > now) {
      await pushBackRun(pool, run.id, new Date(opens))
      return {
        ms: opens - now,
        reason: `waiting for the restore window until ${new Date(opens).toISOString()}`,
      }
    }
  }
  return undefined
}
