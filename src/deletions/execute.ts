import type pg from 'pg'
import { Type } from 'typebox'
import { type AuditInput, appendAuditEvent, appendAuditEvents } from '../audit/index.js'
import type { Principal } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import type { GovernanceConfig } from '../governance/index.js'
import { activeHolds, lockHoldsForReading } from '../holds/index.js'
import { type Job, type JobContext, type JobKind, NonRetryableJobError } from '../jobs/index.js'
import { groupBy } from '../lib/group-by.js'
import { workerActor } from '../lib/system.js'
import type { RegistryClient } from '../oci/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import { mapLimit } from '../registries/map-limit.js'
import type { RegistrySet } from '../registries/registry-set.js'
import type { DeletionGate } from './gates.js'
import {
  finishItems,
  type ItemResult,
  type ItemRow,
  itemCounts,
  itemsOf,
  itemTallies,
  markSent,
  type SentMarker,
} from './items-sql.js'
import { executionRank } from './plan.js'
import { type RepositorySession, withRepositoryLock } from './repository-lock.js'
import { loadRepositoryState } from './repository-state.js'
import { sendDelete } from './send.js'
import { type DeletionRow, getDeletion, setDeletionState } from './sql.js'
import type { DeletionState } from './state-machine.js'
import { type UsageGuard, usageChanges } from './usage-check.js'
import { type Judgement, judge, placeholderOf, protectionChange } from './verify.js'

export const EXECUTE_DELETION = 'deletion.execute'

/**
 * Seams for the crash tests: called right before an item's DELETE leaves and right after its answer
 * is read, before the outcome is committed. Production passes none.
 */
export interface ExecutionHooks {
  beforeDelete?(item: ItemRow): void | Promise<void>
  afterDelete?(item: ItemRow): void | Promise<void>
}

export interface ExecutionDeps {
  pool: pg.Pool
  registries: RegistrySet
  /** Fresh looks at repositories before each wave, and manifests through the content cache. */
  browse: BrowseService
  governance: GovernanceConfig
  /** Repositories of one request executed at once (each by one writer). */
  repositoryConcurrency: number
  /** Items of one repository verified together before their DELETEs are sent. */
  waveSize: number
  hooks?: ExecutionHooks
  /** Tells listeners (GraphQL subscriptions, other replicas) a request's progress changed. */
  notify?: (deletionId: string) => Promise<void>
  /** In-use awareness: usage that appeared since approval stops an item like a new tag does. */
  usage?: UsageGuard
  /** What other features say before an execution runs and after it deleted something. */
  gates: readonly DeletionGate[]
  /** Who may read an execution job: whoever may see its request. */
  visibleTo(principal: Principal, deletionId: string): Promise<boolean>
  /** Emits the final state's notification inside the transaction that records it. */
  announce?: AnnounceFinal
}

/** `DeletionService.announce`, for the final states of an execution. */
export type AnnounceFinal = (
  client: pg.PoolClient,
  row: DeletionRow,
  type: 'deletion.executed' | 'deletion.partially_failed' | 'deletion.failed',
) => Promise<void>

const FINAL_EVENT = {
  succeeded: 'deletion.executed',
  partially_failed: 'deletion.partially_failed',
  failed: 'deletion.failed',
} as const

interface Execution {
  deps: ExecutionDeps
  request: DeletionRow
  client: RegistryClient
  ctx: JobContext
  /** Faults that leave items pending: the attempt fails and the queue retries it with backoff. */
  retryable: unknown[]
  progress: () => Promise<void>
}

/**
 * Runs an approved deletion, repository by repository, each under its one-writer lock, in waves:
 * a fresh look at the repository; each item judged against what was approved (verify.ts); one
 * transaction that re-reads holds and protections and commits the "DELETE sent" markers with what a
 * restore needs; the DELETEs, one at a time; one transaction with the outcomes and their audit
 * events. No transaction is open while the registry is called. A re-run after a crash treats the
 * registry's 404 for a marked item as its own earlier success. Retryable registry faults leave the
 * item pending and fail the attempt, so the queue retries with backoff; terminal ones (405, 403, a
 * first-attempt 404) fail the item.
 */
export function executionJob(deps: ExecutionDeps): JobKind<typeof ExecutionPayloadSchema> {
  return {
    kind: EXECUTE_DELETION,
    payload: ExecutionPayloadSchema,
    run: ({ deletionId }, job, ctx) => execute(deps, deletionId, job, ctx),
    onFailed: (client, { deletionId }, job) =>
      onExecutionFailed(client, deletionId, job.lastError, deps.announce),
    visibleTo: (principal, { deletionId }) => deps.visibleTo(principal, deletionId),
  }
}

/** What a `deletion.execute` job carries. */
export const ExecutionPayloadSchema = Type.Object({ deletionId: Type.String() })

async function execute(deps: ExecutionDeps, deletionId: string, job: Job, ctx: JobContext) {
  for (const gate of deps.gates) await gate.beforeExecution?.(job)
  const request = await start(deps.pool, deletionId)
  if (!request) return { skipped: 'not runnable' }
  const run: Execution = {
    deps,
    request,
    client: deps.registries.get(request.registry).client,
    ctx,
    retryable: [],
    progress: throttled(PROGRESS_EVERY_MS, () => reportProgress(deps, ctx, deletionId)),
  }
  const pending = await itemsOf(deps.pool, deletionId, 'pending')
  const byRepository = groupBy(pending, (item) => item.repository)
  // Every repository runs to its end even when another fails, so nothing is left running after
  // the attempt is over.
  const failures: unknown[] = []
  await mapLimit([...byRepository], deps.repositoryConcurrency, async ([repository, items]) => {
    if (ctx.signal.aborted) return
    await withRepositoryLock(deps.pool, request.registry, repository, ctx.signal, (session) =>
      runRepository(run, session, items),
    ).catch((err: unknown) => failures.push(err))
  })
  await reportProgress(deps, ctx, deletionId)
  ctx.signal.throwIfAborted()
  if (failures.length > 0) throw failures[0]
  if (run.retryable.length > 0) {
    const first = run.retryable[0] as Error & { retryAfterSeconds?: number }
    const err = new Error(`${run.retryable.length} item(s) hit a retryable registry fault: ${first.message}`)
    if (first.retryAfterSeconds) Object.assign(err, { retryAfterMs: first.retryAfterSeconds * 1000 })
    throw err
  }
  return finish(deps, request)
}

async function start(pool: pg.Pool, deletionId: string): Promise<DeletionRow | undefined> {
  return withTransaction(pool, async (client) => {
    const row = await getDeletion(client, deletionId, { forUpdate: true })
    if (!row) throw new NonRetryableJobError(`deletion ${deletionId} does not exist`)
    // `running` again: a worker died holding this job; its finished items stay finished.
    if (row.state === 'running') return row
    if (row.state !== 'queued') return undefined
    const running = await setDeletionState(client, row.id, 'queued', 'running')
    await appendAuditEvent(client, {
      ...actorFor(row),
      action: 'deletion.running',
      outcome: 'running',
      registry: row.registry,
      deletionId: row.id,
      details: {},
    })
    return running
  })
}

/**
 * Each wave's verification HEADs every tag of the repository, so the waves of one repository are
 * bounded in number: a request deleting many items there makes at most this many passes (plus one
 * per change of rank), and its cost stays linear in the tags deleted, not their square.
 */
export const MAX_PASSES_PER_REPOSITORY = 4

/**
 * The wave size for `items` items of one repository: `waveSize`, or larger where that would take
 * more than MAX_PASSES_PER_REPOSITORY passes. The price is a wider residual window for the items
 * late in a large wave (its DELETEs go one at a time); the gain is a request over thousands of tags
 * of one repository that does not re-read that repository hundreds of times.
 */
export function waveSizeFor(items: number, waveSize: number): number {
  return Math.max(waveSize, Math.ceil(items / MAX_PASSES_PER_REPOSITORY))
}

/** Items in execution order (what lists others first), in waves of one rank and bounded size. */
async function runRepository(run: Execution, session: RepositorySession, items: ItemRow[]): Promise<void> {
  const ordered = [...items].sort(
    (a, b) => executionRank(rankable(a)) - executionRank(rankable(b)) || a.position - b.position,
  )
  const size = waveSizeFor(items.length, run.deps.waveSize)
  let wave: ItemRow[] = []
  for (const item of ordered) {
    if (wave.length > 0 && (wave.length >= size || rankOf(wave[0]!) !== rankOf(item))) {
      await runWave(run, session, wave)
      wave = []
    }
    wave.push(item)
  }
  if (wave.length > 0) await runWave(run, session, wave)
}

async function runWave(run: Execution, session: RepositorySession, wave: ItemRow[]): Promise<void> {
  const { deps, request, ctx } = run
  if (ctx.signal.aborted) return
  const repository = wave[0]!.repository
  const state = await loadRepositoryState(deps.browse, request.registry, repository, {
    fresh: true,
    bodies: false,
  })
  const judged = await withUsage(
    run,
    repository,
    wave.map((item) => ({ item, judgement: judge(item, state) })),
  )
  const restore = await restoreData(run, judged)

  // The markers, with holds and protections read again under the holds lock; items that stop here
  // end in the same transaction.
  const toSend = await session.transaction(async (db) => {
    await lockHoldsForReading(db)
    const holds = await activeHolds(db)
    const now = new Date()
    const finished: { item: ItemRow; result: ItemResult }[] = []
    const sending: { item: ItemRow; judgement: Extract<Judgement, { send: true }> }[] = []
    for (const { item, judgement } of judged) {
      const stopped = judgement.send
        ? protectionChange(
            deps.governance,
            holds,
            request.registry,
            item,
            judgement.vanishing,
            approvedAsAdminOnly(request, item),
            now,
          )
        : judgement.result
      if (stopped) finished.push({ item, result: stopped })
      else sending.push({ item, judgement: judgement as Extract<Judgement, { send: true }> })
    }
    await markSent(
      db,
      request.id,
      sending.map(({ item, judgement }): SentMarker => {
        const data = restore.get(item.position)
        return {
          position: item.position,
          verifiedAt: state.snapshot.listedAt,
          ...(data ? { restore: { ...data, tags: judgement.vanishing } } : {}),
          ...(judgement.placeholder ? { placeholderDigest: judgement.placeholder } : {}),
        }
      }),
    )
    await recordOutcomes(
      db,
      request,
      finished.map(({ item, result }) => ({ item, result })),
    )
    return sending
  })

  const outcomes: { item: ItemRow; result: ItemResult; issuedAt: Date }[] = []
  for (const { item, judgement } of toSend) {
    if (ctx.signal.aborted) break
    session.assertHeld()
    await deps.hooks?.beforeDelete?.(item)
    const issuedAt = new Date()
    const result = await sendDelete(run.client, item, judgement).catch((err: unknown) => {
      run.retryable.push(err)
      return undefined
    })
    await deps.hooks?.afterDelete?.(item)
    if (result) outcomes.push({ item, result, issuedAt })
  }
  await session.transaction((db) => recordOutcomes(db, request, outcomes))
  await run.progress()
}

/** Items whose DELETE would now take an image something runs or names end plan_changed instead. */
async function withUsage(
  run: Execution,
  repository: string,
  judged: { item: ItemRow; judgement: Judgement }[],
): Promise<{ item: ItemRow; judgement: Judgement }[]> {
  if (!run.deps.usage) return judged
  const sending = judged.flatMap(({ item, judgement }) =>
    judgement.send
      ? [
          {
            position: item.position,
            digest: item.digest,
            action: item.action,
            tag: item.tag,
            vanishing: judgement.vanishing,
            approvedAsAdminOnly: approvedAsAdminOnly(run.request, item),
          },
        ]
      : [],
  )
  const stopped = await usageChanges(
    run.deps.usage,
    run.deps.governance,
    run.request.registry,
    repository,
    sending,
  )
  return judged.map(({ item, judgement }) => {
    const result = stopped.get(item.position)
    return result ? { item, judgement: { send: false, result } } : { item, judgement }
  })
}

/**
 * The manifest bytes a restore pushes back, for the items about to be sent that have none stored
 * yet. They come through the content cache (planning fetched them; a digest's bytes never change).
 */
async function restoreData(
  run: Execution,
  judged: { item: ItemRow; judgement: Judgement }[],
): Promise<Map<number, { manifest: Buffer; mediaType: string }>> {
  const wanted = judged.filter(
    ({ item, judgement }) => judgement.send && item.restore_manifest === null && !isPlaceholderOnly(item),
  )
  const out = new Map<number, { manifest: Buffer; mediaType: string }>()
  if (wanted.length === 0) return out
  // A digest gone already (a re-run after our own DELETE) is left out: the DELETE will say 404.
  const bytes = await run.deps.browse.manifestBytesOf(
    run.request.registry,
    wanted[0]!.item.repository,
    wanted.map(({ item }) => item.digest),
  )
  for (const { item } of wanted) {
    const found = bytes.get(item.digest)
    if (found) out.set(item.position, { manifest: found.bytes, mediaType: found.mediaType })
  }
  return out
}

/** A dangling tag's item: its digest is the placeholder, there is no image to give back. */
function isPlaceholderOnly(item: ItemRow): boolean {
  return (
    item.action === 'untag' &&
    item.untag_method === 'placeholder' &&
    placeholderOf(item).digest === item.digest
  )
}

/** Ends items (once each) with one audit event each, in the caller's transaction. */
async function recordOutcomes(
  db: pg.PoolClient,
  request: DeletionRow,
  outcomes: { item: ItemRow; result: ItemResult; issuedAt?: Date }[],
): Promise<void> {
  if (outcomes.length === 0) return
  const ended = await finishItems(
    db,
    request.id,
    outcomes.map(({ item, result, issuedAt }) => ({
      position: item.position,
      result,
      ...(issuedAt ? { issuedAt } : {}),
    })),
  )
  const events: AuditInput[] = outcomes
    .filter(({ item }) => ended.has(item.position))
    .map(({ item, result }) => ({
      ...actorFor(request),
      action: auditAction(item, result),
      outcome: result.outcome,
      registry: request.registry,
      repository: item.repository,
      tag: item.tag,
      digest: item.digest,
      deletionId: request.id,
      details: {
        itemPosition: item.position,
        action: item.action,
        vanishingTags: item.vanishing_tags,
        ...(result.errorCode ? { errorCode: result.errorCode, error: result.error ?? null } : {}),
      },
    }))
  await appendAuditEvents(db, events)
}

async function finish(deps: ExecutionDeps, request: DeletionRow) {
  const result = await withTransaction(deps.pool, async (db) => {
    const current = await getDeletion(db, request.id, { forUpdate: true })
    if (current?.state !== 'running') return { state: current?.state }
    const { counts, planChanged: notExecuted } = (await itemTallies(db, [request.id])).get(request.id)!
    const state: DeletionState =
      counts.failed === counts.total
        ? 'failed'
        : counts.failed + notExecuted > 0
          ? 'partially_failed'
          : 'succeeded'
    const ended = await setDeletionState(db, request.id, 'running', state)
    await db.query('UPDATE deletion_requests SET executed_at = now() WHERE id = $1::uuid', [request.id])
    // Before the audit event: GC transactions lock their run row before the audit chain head.
    if (counts.deleted > 0) for (const gate of deps.gates) await gate.deleted?.(db, request.registry)
    await appendAuditEvent(db, {
      ...actorFor(request),
      action: `deletion.${state}`,
      outcome: state,
      registry: request.registry,
      deletionId: request.id,
      details: { ...counts, planChanged: notExecuted },
    })
    if (ended) await deps.announce?.(db, ended, FINAL_EVENT[state as keyof typeof FINAL_EVENT])
    return { state, ...counts, planChanged: notExecuted }
  })
  // After the commit, so a listener that reads the request sees the final state.
  await deps.notify?.(request.id).catch(() => {})
  return result
}

/** Progress is written at most this often per job: per item it would cost more than the item. */
const PROGRESS_EVERY_MS = 250

function throttled(everyMs: number, work: () => Promise<void>): () => Promise<void> {
  let last = 0
  return async () => {
    const now = Date.now()
    if (now - last < everyMs) return
    last = now
    await work()
  }
}

async function reportProgress(deps: ExecutionDeps, ctx: JobContext, deletionId: string) {
  const counts = (await itemCounts(deps.pool, [deletionId])).get(deletionId)
  if (!ctx.signal.aborted) await ctx.progress(counts).catch(() => {})
  await deps.notify?.(deletionId).catch(() => {})
}

/** The worker acts for the person who requested the deletion; both are on every event. */
function actorFor(request: DeletionRow) {
  return workerActor(request.requester_person, request.requester_teams, `deletion-${request.id}`)
}

function auditAction(item: ItemRow, result: ItemResult): string {
  if (result.state === 'skipped') return 'item.skipped'
  if (result.state === 'failed') return 'item.failed'
  return item.action === 'untag' ? 'tag.untagged' : 'manifest.deleted'
}

/** Whether the approval covered admin-only items: an admin had to approve, or the plan said so. */
function approvedAsAdminOnly(request: DeletionRow, item: ItemRow): boolean {
  if (request.approval_requirement.adminCount > 0) return true
  return request.plan.items[item.position]?.protection.level === 'admin-only'
}

function rankable(item: ItemRow) {
  return { action: item.action, mediaType: item.media_type }
}

function rankOf(item: ItemRow): number {
  return executionRank(rankable(item))
}

/**
 * The queue gave up on an execution job (its attempts are spent): items still pending fail with
 * the job's last error, and the request ends failed or partially failed. Runs inside the queue's
 * transaction that marks the job failed, so the request, its items and the audit event agree.
 */
async function onExecutionFailed(
  db: pg.PoolClient,
  deletionId: string,
  lastError: string | null,
  announce?: AnnounceFinal,
): Promise<void> {
  const current = await getDeletion(db, deletionId, { forUpdate: true })
  if (!current || (current.state !== 'running' && current.state !== 'queued')) return
  await db.query(
    `UPDATE deletion_items SET state = 'failed', outcome = 'gave_up', error_code = 'REGENT_EXECUTION_GAVE_UP', error = $2,
       finished_at = now(), updated_at = now()
     WHERE deletion_id = $1::uuid AND state = 'pending'`,
    [deletionId, lastError],
  )
  const counts = (await itemCounts(db, [deletionId])).get(deletionId)
  const state: DeletionState = counts && counts.failed < counts.total ? 'partially_failed' : 'failed'
  if (current.state === 'queued') await setDeletionState(db, deletionId, 'queued', 'running')
  const ended = await setDeletionState(db, deletionId, 'running', state)
  await appendAuditEvent(db, {
    ...actorFor(current),
    action: `deletion.${state}`,
    outcome: state,
    registry: current.registry,
    deletionId,
    details: { ...counts, lastError },
  })
  if (ended) await announce?.(db, ended, FINAL_EVENT[state as keyof typeof FINAL_EVENT])
}
