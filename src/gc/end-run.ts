import type pg from 'pg'
import { appendAuditEvent } from '../audit/index.js'
import { withTransaction } from '../db/transaction.js'
import type { Job } from '../jobs/index.js'
import { systemActor, workerActor } from '../lib/system.js'
import { jsonObject, type Notifier } from '../notifications/index.js'
import { enqueueRun } from './queue.js'
import { toRunView } from './service.js'
import { bigintOrNull, finishRun, freed, type GcRunRow, getRun, insertRun } from './sql.js'

/** Whom a run's end is told to: listeners of its progress, and outbound webhooks. */
export interface RunEndListeners {
  /** Tells listeners (GraphQL subscriptions, other replicas) a run changed. */
  notify?: (runId: string) => Promise<void>
  /** Outbound webhooks: `gc.finished` / `gc.failed` are emitted with the run's end. */
  notifier?: Notifier
}

export type RunOutcome = { state: 'succeeded' | 'failed'; failedStep?: string; error?: string }

/**
 * Ends a run with its audit event (`gc.finished` or `gc.failed`) in one transaction, and queues the
 * follow-up run deletions asked for while it could no longer collect their garbage.
 */
export async function endRun(
  deps: RunEndListeners & { pool: pg.Pool },
  run: GcRunRow,
  outcome: RunOutcome,
  options: { details?: Record<string, unknown>; owner?: string } = {},
): Promise<GcRunRow | undefined> {
  const ended = await withTransaction(deps.pool, (client) =>
    endRunIn(client, run.id, outcome, options.details ?? {}, options.owner, deps.notifier),
  )
  await deps.notify?.(run.id).catch(() => {})
  return ended
}

/**
 * The queue gave up on a GC job (attempts spent, or a crash on the last one): its run, if still
 * open, fails naming the step it was in. Runs in the queue's transaction that fails the job.
 */
export async function failRun(
  client: pg.PoolClient,
  runId: string,
  job: Job,
  notifier?: Notifier,
): Promise<void> {
  const run = await getRun(client, runId, { forUpdate: true })
  if (!run || run.job_id !== job.id || (run.state !== 'queued' && run.state !== 'running')) return
  const open = [...run.steps].reverse().find((s) => s.ok !== true)
  await endRunIn(
    client,
    run.id,
    { state: 'failed', failedStep: open?.name ?? 'job', error: job.lastError ?? 'the GC job failed' },
    { jobFailed: true },
    undefined,
    notifier,
  )
}

/** The worker acts for whoever asked for the run; both are on every event. */
export function runActor(run: GcRunRow) {
  return workerActor(run.requested_on_behalf_of ?? run.requested_by, [], `gc-${run.id}`)
}

async function endRunIn(
  client: pg.PoolClient,
  runId: string,
  outcome: { state: 'succeeded' | 'failed'; failedStep?: string | null; error?: string | null },
  details: Record<string, unknown>,
  owner?: string,
  notifier?: Notifier,
): Promise<GcRunRow | undefined> {
  const ended = await finishRun(client, runId, outcome, owner)
  if (!ended) return undefined
  if (ended.followup_after) {
    const next = await insertRun(client, {
      registry: ended.registry,
      trigger: 'coalesced',
      requestedBy: 'regent',
      dryRun: false,
      deleteUntagged: false,
      notBefore: ended.followup_after,
    })
    if (next) await enqueueRun(client, next, systemActor(`gc-${next.id}`), { followUpOf: ended.id })
  }
  await appendAuditEvent(client, {
    ...runActor(ended),
    action: outcome.state === 'succeeded' ? 'gc.finished' : 'gc.failed',
    outcome: outcome.state,
    registry: ended.registry,
    details: {
      runId: ended.id,
      trigger: ended.trigger,
      dryRun: ended.dry_run,
      failedStep: ended.failed_step,
      error: ended.error,
      eligibleBlobs: bigintOrNull(ended.eligible_blobs),
      eligibleBytes: bigintOrNull(ended.eligible_bytes),
      bytesBefore: bigintOrNull(ended.bytes_before),
      bytesAfter: bigintOrNull(ended.bytes_after),
      bytesFreed: freed(ended),
      ...details,
    },
  })
  if (notifier?.active) await notifier.notify(client, gcEvent(ended))
  return ended
}

/** A finished or failed run as a notification; a GC run is about a registry, not a team. */
function gcEvent(run: GcRunRow) {
  const view = toRunView(run, { withLog: false })
  return {
    type: run.state === 'succeeded' ? ('gc.finished' as const) : ('gc.failed' as const),
    subject: run.id,
    registry: run.registry,
    summary: view.summary,
    data: jsonObject({
      runId: view.id,
      state: view.state,
      trigger: view.trigger,
      dryRun: view.dryRun,
      deleteUntagged: view.deleteUntagged,
      requestedBy: view.requestedBy,
      failedStep: view.failedStep,
      error: view.error,
      eligible: view.eligible,
      collected: view.collected,
      bytesBefore: view.bytesBefore,
      bytesAfter: view.bytesAfter,
      bytesFreed: view.bytesFreed,
      startedAt: view.startedAt,
      finishedAt: view.finishedAt,
    }),
  }
}
