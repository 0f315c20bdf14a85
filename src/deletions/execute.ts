import type pg from 'pg'
import { appendAuditEvent, auditActor } from '../audit/index.js'
import { withTransaction } from '../db/transaction.js'
import type { DeletionGcHooks } from '../gc/deletions.js'
import { type JobContext, type JobHandler, NonRetryableJobError } from '../jobs/index.js'
import { isRegistryError, type RegistryClient } from '../oci/index.js'
import { mapLimit } from '../registries/map-limit.js'
import type { RegistrySet } from '../registries/registry-set.js'
import {
  finishItem,
  type ItemRow,
  itemCounts,
  itemsOf,
  markDeleteSent,
  storePlaceholder,
  storeRestoreData,
} from './items-sql.js'
import { buildPlaceholder } from './placeholder.js'
import { type DeletionRow, getDeletion, setDeletionState } from './sql.js'
import type { DeletionState } from './state-machine.js'

export const EXECUTE_DELETION = 'deletion.execute'

/**
 * Seams for the crash tests (reliability R7): called right before an item's DELETE leaves and
 * right after its answer is read, before the outcome is committed. Production passes none.
 */
export interface ExecutionHooks {
  beforeDelete?(item: ItemRow): void | Promise<void>
  afterDelete?(item: ItemRow): void | Promise<void>
}

export interface ExecutionDeps {
  pool: pg.Pool
  registries: RegistrySet
  itemConcurrency: number
  hooks?: ExecutionHooks
  /** A manifest's bytes by digest through the content cache; without it they are fetched. */
  manifests?: (
    registry: string,
    repository: string,
    digest: string,
  ) => Promise<{ mediaType: string; bytes: Buffer }>
  /** Tells listeners (GraphQL subscriptions, other replicas) a request's progress changed. */
  notify?: (deletionId: string) => Promise<void>
  /** Garbage collection: jobs wait while a GC of their registry runs; finished ones schedule one. */
  gc?: DeletionGcHooks
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

type ItemResult = {
  state: 'deleted' | 'skipped' | 'failed'
  outcome: string
  errorCode?: string
  error?: string
}

/**
 * Runs an approved deletion. Every item is re-resolved and skipped if its tag moved; what a restore
 * needs is stored before the delete; the DELETE is marked as sent (committed) before it leaves, so a
 * re-run after a crash treats the registry's 404 as its own earlier success; the outcome and the
 * item's one audit event commit together. No transaction is open while the registry is called.
 * Retryable registry faults (5xx, 429, resets) leave the item pending and fail the attempt, so the
 * queue retries with backoff; terminal ones (405, 403, a first-attempt 404) fail the item.
 */
export function deletionHandler(deps: ExecutionDeps): JobHandler {
  return async (job, ctx) => {
    const { deletionId } = job.payload as { deletionId: string }
    await deps.gc?.waitWhileCollecting(job)
    const request = await start(deps.pool, deletionId)
    if (!request) return { skipped: 'not runnable' }
    const { client } = deps.registries.get(request.registry)
    const pending = await itemsOf(deps.pool, deletionId, 'pending')
    // Children before their index would break the index while it still exists; parents first.
    const ordered = [...pending].sort((a, b) => rank(a) - rank(b) || a.position - b.position)
    const retryable: unknown[] = []
    const progress = throttled(PROGRESS_EVERY_MS, () => reportProgress(deps, ctx, deletionId))
    for (const wave of waves(ordered)) {
      await mapLimit(wave, deps.itemConcurrency, async (item) => {
        if (ctx.signal.aborted) return
        try {
          await runItem(deps, request, client, item)
        } catch (err) {
          retryable.push(err)
        }
        await progress()
      })
    }
    await reportProgress(deps, ctx, deletionId)
    ctx.signal.throwIfAborted()
    if (retryable.length > 0) {
      const first = retryable[0] as Error & { retryAfterSeconds?: number }
      const err = new Error(`${retryable.length} item(s) hit a retryable registry fault: ${first.message}`)
      if (first.retryAfterSeconds) Object.assign(err, { retryAfterMs: first.retryAfterSeconds * 1000 })
      throw err
    }
    return finish(deps, request)
  }
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
      ...workerActor(row),
      action: 'deletion.running',
      outcome: 'running',
      registry: row.registry,
      deletionId: row.id,
      details: {},
    })
    return running
  })
}

async function runItem(
  deps: ExecutionDeps,
  request: DeletionRow,
  client: RegistryClient,
  item: ItemRow,
): Promise<void> {
  const result = await attempt(deps, client, item).catch((err: unknown) => {
    if (!isRegistryError(err)) throw err
    if (['rate_limited', 'server_error', 'network'].includes(err.outcome ?? '')) throw err
    return {
      state: 'failed',
      outcome: err.outcome ?? 'error',
      errorCode: err.code,
      error: err.message,
    } satisfies ItemResult
  })
  await withTransaction(deps.pool, async (db) => {
    if (!(await finishItem(db, item, result))) return
    await appendAuditEvent(db, {
      ...workerActor(request),
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
    })
  })
}

async function attempt(deps: ExecutionDeps, client: RegistryClient, item: ItemRow): Promise<ItemResult> {
  const sentBefore = item.delete_sent_at !== null
  const { repository } = item

  // Re-resolve what the plan pinned (R1): a tag that now points elsewhere is skipped, never deleted.
  if (item.tag && (item.action === 'untag' || item.action === 'delete-manifest')) {
    const head = await client.headManifest(repository, item.tag)
    const ours =
      head &&
      (head.digest === item.digest ||
        (item.placeholder_digest !== null && head.digest === item.placeholder_digest))
    if (!ours) {
      if (sentBefore) return { state: 'deleted', outcome: 'already_deleted' }
      return head
        ? {
            state: 'skipped',
            outcome: 'tag_moved',
            error: `${repository}:${item.tag} now points at ${head.digest}`,
          }
        : { state: 'skipped', outcome: 'tag_gone', error: `${repository}:${item.tag} no longer exists` }
    }
  } else if (!(await client.headManifest(repository, item.digest))) {
    return sentBefore
      ? { state: 'deleted', outcome: 'already_deleted' }
      : {
          state: 'failed',
          outcome: 'not_found',
          errorCode: 'REGENT_REGISTRY_NOT_FOUND',
          error: `${repository}@${item.digest} does not exist`,
        }
  }

  if (item.restore_manifest === null) await saveRestoreData(deps, client, item)

  await deps.hooks?.beforeDelete?.(item)
  await markDeleteSent(deps.pool, item)
  const answer = await send(deps, client, item)
  await deps.hooks?.afterDelete?.(item)

  if (answer.outcome === 'not_found') {
    // A 404 after a DELETE of ours was sent (this attempt's marker was committed before, but a
    // first-ever attempt's 404 means the thing was never there).
    return sentBefore
      ? { state: 'deleted', outcome: 'already_deleted' }
      : {
          state: 'failed',
          outcome: 'not_found',
          errorCode: 'REGENT_REGISTRY_NOT_FOUND',
          error: `${repository}: ${item.tag ?? item.digest} not found`,
        }
  }
  if (answer.outcome === 'delete_disabled') {
    return {
      state: 'failed',
      outcome: 'delete_disabled',
      errorCode: 'REGENT_REGISTRY_DELETE_DISABLED',
      error: `registry answered ${answer.status}${answer.ociCode ? ` ${answer.ociCode}` : ''}`,
    }
  }
  return confirmGone(client, item)
}

/**
 * The manifest bytes and the tags pointing at it now: what a restore pushes back. The bytes come
 * through the content cache (planning usually fetched them already; a digest's bytes never change).
 * Only sibling tags are looked up again: the item's own tag was just resolved to this digest.
 */
async function saveRestoreData(deps: ExecutionDeps, client: RegistryClient, item: ItemRow): Promise<void> {
  const { mediaType, bytes } = deps.manifests
    ? await deps.manifests(client.name, item.repository, item.digest)
    : await client.getManifest(item.repository, item.digest)
  const own = item.tag ? [item.tag] : []
  let siblings: string[] = []
  if (item.action !== 'untag') {
    const others = item.vanishing_tags.filter((tag) => tag !== item.tag)
    const heads = await mapLimit(
      others,
      4,
      async (tag) => [tag, await client.headManifest(item.repository, tag)] as const,
    )
    siblings = heads.filter(([, head]) => head?.digest === item.digest).map(([tag]) => tag)
  }
  await storeRestoreData(deps.pool, item, { manifest: bytes, mediaType, tags: [...own, ...siblings] })
}

async function send(deps: ExecutionDeps, client: RegistryClient, item: ItemRow) {
  if (item.action !== 'untag')
    return client.deleteManifest(item.repository, item.digest, { mediaType: item.media_type })
  if (item.untag_method === 'tag-delete')
    return client.deleteTag(item.repository, item.tag!, { mediaType: item.media_type })
  const placeholder = await buildPlaceholder(client, item.repository, item.tag!, item.media_type)
  await storePlaceholder(deps.pool, item, placeholder.digest)
  await client.putManifest(item.repository, item.tag!, placeholder.mediaType, placeholder.bytes)
  return client.deleteManifest(item.repository, placeholder.digest, { mediaType: placeholder.mediaType })
}

/**
 * R12: a 202 is not proof (distribution can answer 202 with tags left dangling). Poll HEAD briefly
 * until the manifest (or, for an untag, the tag) is gone.
 */
async function confirmGone(client: RegistryClient, item: ItemRow): Promise<ItemResult> {
  const reference = item.action === 'untag' ? item.tag! : item.digest
  for (let i = 0; i < 5; i++) {
    const head = await client.headManifest(item.repository, reference)
    if (
      !head ||
      (item.action === 'untag' && head.digest !== item.digest && head.digest !== item.placeholder_digest)
    ) {
      return { state: 'deleted', outcome: 'deleted' }
    }
    await new Promise((resolve) => setTimeout(resolve, 200 * (i + 1)))
  }
  return {
    state: 'failed',
    outcome: 'not_confirmed',
    errorCode: 'REGENT_DELETE_NOT_CONFIRMED',
    error: `${item.repository}:${reference} still answers after the registry accepted its deletion`,
  }
}

async function finish(deps: ExecutionDeps, request: DeletionRow) {
  const result = await withTransaction(deps.pool, async (db) => {
    const current = await getDeletion(db, request.id, { forUpdate: true })
    if (current?.state !== 'running') return { state: current?.state }
    const counts = (await itemCounts(db, [request.id])).get(request.id)!
    const state: DeletionState =
      counts.failed === 0 ? 'succeeded' : counts.failed === counts.total ? 'failed' : 'partially_failed'
    const ended = await setDeletionState(db, request.id, 'running', state)
    await db.query('UPDATE deletion_requests SET executed_at = now() WHERE id = $1::uuid', [request.id])
    // Before the audit event: GC transactions lock their run row before the audit chain head.
    if (counts.deleted > 0) await deps.gc?.deletionsFinished(db, request.registry)
    await appendAuditEvent(db, {
      ...workerActor(request),
      action: `deletion.${state}`,
      outcome: state,
      registry: request.registry,
      deletionId: request.id,
      details: { ...counts },
    })
    if (ended) await deps.announce?.(db, ended, FINAL_EVENT[state as keyof typeof FINAL_EVENT])
    return { state, ...counts }
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
function workerActor(request: DeletionRow) {
  return auditActor(
    {
      subject: 'regent-worker',
      onBehalfOf: request.requester_person,
      teams: request.requester_teams,
      roles: [],
      channel: 'system',
    },
    { requestId: `deletion-${request.id}` },
  )
}

function auditAction(item: ItemRow, result: ItemResult): string {
  if (result.state === 'skipped') return 'item.skipped'
  if (result.state === 'failed') return 'item.failed'
  return item.action === 'untag' ? 'tag.untagged' : 'manifest.deleted'
}

/** Index manifests go first, then images, then children, then referrers. */
function rank(item: ItemRow): number {
  return { 'delete-manifest': 0, untag: 0, 'delete-child': 1, 'delete-referrer': 2 }[item.action]
}

/** Items of one rank run concurrently; the next rank starts when the previous one is done. */
function waves(items: ItemRow[]): ItemRow[][] {
  const out: ItemRow[][] = []
  for (const item of items) {
    const last = out.at(-1)
    if (last && rank(last[0]!) === rank(item)) last.push(item)
    else out.push([item])
  }
  return out
}

/**
 * The queue gave up on an execution job (its attempts are spent): items still pending fail with
 * the job's last error, and the request ends failed or partially failed. Runs inside the queue's
 * transaction that marks the job failed, so the request, its items and the audit event agree.
 */
export async function onExecutionFailed(
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
    ...workerActor(current),
    action: `deletion.${state}`,
    outcome: state,
    registry: current.registry,
    deletionId,
    details: { ...counts, lastError },
  })
  if (ended) await announce?.(db, ended, FINAL_EVENT[state as keyof typeof FINAL_EVENT])
}
