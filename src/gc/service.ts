import type pg from 'pg'
import { type AuditInput, auditActor, auditAlone } from '../audit/index.js'
import { isAdmin, type Principal, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { formatBytes } from '../http/format.js'
import { cancelJob } from '../jobs/index.js'
import { decodeKeyset, keysetPage } from '../lib/paging.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { enqueueRun } from './queue.js'
import type { GcRunView } from './schemas.js'
import {
  activeRun,
  bigintOrNull,
  freed,
  type GcRunRow,
  type GcState,
  getRun,
  insertRun,
  listRuns,
  takeOverRun,
} from './sql.js'

export interface GcRequestInput {
  dryRun?: boolean
  deleteUntagged?: boolean
}

/**
 * GC runs as a service: admins request them, anyone with a role follows them. Exclusivity is the
 * database's (gc_runs_one_active): a request while the registry has a run queued or running is
 * refused with 409 REGENT_GC_ALREADY_RUNNING naming that run, except that a manual request takes
 * over a queued coalesced or scheduled run, which then starts at once as asked (a dry run taking
 * one over queues the real run again after itself).
 */
export class GcService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly registries: RegistrySet,
  ) {}

  async request(
    principal: Principal,
    context: RequestContext,
    registry: string,
    input: GcRequestInput,
  ): Promise<GcRunView> {
    const dryRun = input.dryRun ?? false
    const deleteUntagged = input.deleteUntagged ?? false
    if (!isAdmin(principal)) {
      await this.audit(principal, context, {
        action: 'gc.request_refused',
        outcome: 'refused',
        registry,
        details: { code: 'REGENT_FORBIDDEN', dryRun, deleteUntagged },
      })
      throw new errors.FORBIDDEN('only admins may run garbage collection')
    }
    const configured = this.registries.get(registry)
    if (!configured.config.gc) throw new errors.GC_NOT_CONFIGURED(registry)

    const actor = auditActor(principal, context)
    const outcome = await withTransaction(this.pool, async (client) => {
      for (let tries = 0; tries < 3; tries++) {
        const inserted = await insertRun(client, {
          registry,
          trigger: 'manual',
          requestedBy: principal.subject,
          onBehalfOf: principal.onBehalfOf ?? null,
          dryRun,
          deleteUntagged,
        })
        if (inserted) return { run: await enqueueRun(client, inserted, actor) }
        const active = await activeRun(client, registry, { forUpdate: true })
        if (!active) continue // it ended meanwhile: try again
        if (active.state === 'queued' && active.trigger !== 'manual') {
          const taken = await takeOverRun(client, active.id, {
            requestedBy: principal.subject,
            onBehalfOf: principal.onBehalfOf ?? null,
            dryRun,
            deleteUntagged,
          })
          if (taken) {
            // The old job (still waiting for its quiet period) is not needed any more; if it
            // was claimed meanwhile it finds itself superseded (gc_runs.job_id) and stops.
            if (active.job_id) await cancelJob(client, active.job_id)
            return { run: await enqueueRun(client, taken, actor, { tookOver: active.trigger }) }
          }
        }
        return { refused: active }
      }
      throw new Error(`could not request a GC of ${registry}`)
    })
    if ('refused' in outcome && outcome.refused) {
      const active = outcome.refused
      await this.audit(principal, context, {
        action: 'gc.request_refused',
        outcome: 'refused',
        registry,
        details: {
          code: 'REGENT_GC_ALREADY_RUNNING',
          activeRunId: active.id,
          activeState: active.state,
          dryRun,
        },
      })
      throw Object.assign(new errors.GC_ALREADY_RUNNING(registry, active.state, active.id), {
        details: { runId: active.id, state: active.state, trigger: active.trigger },
      })
    }
    return toRunView(outcome.run!, { withLog: true })
  }

  async get(principal: Principal, id: string): Promise<GcRunView> {
    requireRole(principal)
    const row = await getRun(this.pool, id)
    if (!row) throw new errors.GC_RUN_NOT_FOUND(id)
    return toRunView(row, { withLog: true })
  }

  /** Runs newest first, without their logs (GET one run for that). */
  async list(
    principal: Principal,
    filters: { registry?: string; state?: GcState },
    page: { limit: number; cursor?: string },
  ): Promise<{ items: GcRunView[]; nextCursor: string | null }> {
    requireRole(principal)
    const after = decodeKeyset(page.cursor)
    const rows = await listRuns(this.pool, filters, { limit: page.limit + 1, ...(after ? { after } : {}) })
    const shown = keysetPage(rows, page.limit)
    return {
      items: shown.rows.map((row) => toRunView(row, { withLog: false })),
      nextCursor: shown.nextCursor,
    }
  }

  private async audit(
    principal: Principal,
    context: RequestContext,
    event: Omit<AuditInput, keyof ReturnType<typeof auditActor>>,
  ) {
    await auditAlone(this.pool, auditActor(principal, context), event)
  }
}

function requireRole(principal: Principal): void {
  if (principal.roles.length === 0)
    throw new errors.FORBIDDEN('reading GC runs needs at least the viewer role')
}

export function toRunView(row: GcRunRow, options: { withLog: boolean }): GcRunView {
  const marked = bigintOrNull(row.marked_blobs)
  const eligibleBlobs = bigintOrNull(row.eligible_blobs)
  const view: Omit<GcRunView, 'summary'> = {
    id: row.id,
    registry: row.registry,
    trigger: row.trigger,
    requestedBy: { subject: row.requested_by, onBehalfOf: row.requested_on_behalf_of },
    dryRun: row.dry_run,
    deleteUntagged: row.delete_untagged,
    state: row.state,
    failedStep: row.failed_step,
    error: row.error,
    steps: row.steps,
    eligible: {
      markedBlobs: marked,
      blobs: eligibleBlobs,
      manifests: bigintOrNull(row.eligible_manifests),
      bytes: bigintOrNull(row.eligible_bytes),
      share:
        marked === null || eligibleBlobs === null
          ? null
          : marked + eligibleBlobs === 0
            ? 0
            : eligibleBlobs / (marked + eligibleBlobs),
    },
    collected: { blobs: bigintOrNull(row.collected_blobs), manifests: bigintOrNull(row.collected_manifests) },
    bytesBefore: bigintOrNull(row.bytes_before),
    bytesAfter: bigintOrNull(row.bytes_after),
    bytesFreed: freed(row),
    ...(options.withLog ? { log: row.log } : {}),
    jobId: row.job_id,
    notBefore: row.not_before.toISOString(),
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
  }
  return { ...view, summary: summarize(view) }
}

function summarize(view: Omit<GcRunView, 'summary'>): string {
  const head = `GC ${view.id.slice(0, 8)} of ${view.registry} (${view.dryRun ? 'dry run, ' : ''}${view.trigger})`
  const by = view.requestedBy.onBehalfOf ?? view.requestedBy.subject
  const found =
    view.eligible.blobs === null
      ? ''
      : `${view.eligible.blobs} blob(s)${view.eligible.bytes === null ? '' : ` (${formatBytes(view.eligible.bytes)})`} and ${view.eligible.manifests ?? 0} manifest(s) eligible`
  switch (view.state) {
    case 'queued':
      return `${head} is queued until ${view.notBefore}; requested by ${by}`
    case 'running': {
      const current = view.steps.at(-1)
      return `${head} is running${current ? `: step ${current.name}` : ''}; requested by ${by}`
    }
    case 'failed':
      return `${head} failed at ${view.failedStep ?? 'an unknown step'}: ${view.error ?? 'no detail'}; requested by ${by}`
    case 'cancelled':
      return `${head} was cancelled; requested by ${by}`
    default: {
      if (view.dryRun)
        return `${head} succeeded: ${found || 'nothing reported'} (nothing removed); requested by ${by}`
      const space =
        view.bytesFreed === null
          ? ''
          : `freed ${formatBytes(view.bytesFreed)}${view.bytesBefore !== null && view.bytesAfter !== null ? ` (${formatBytes(view.bytesBefore)} → ${formatBytes(view.bytesAfter)})` : ''}, `
      return `${head} succeeded: ${space}${found || 'no counts reported'}; requested by ${by}`
    }
  }
}
