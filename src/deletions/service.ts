import { createHash, randomUUID } from 'node:crypto'
import type pg from 'pg'
import {
  type AuditActor,
  type AuditInput,
  appendAuditEvent,
  auditActor,
  auditAlone,
  canonicalJson,
} from '../audit/index.js'
import { isAdmin, type Principal, personOf, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import {
  approvalProgress,
  type GovernanceConfig,
  mayApprove,
  mayRequest,
  owningTeams,
} from '../governance/index.js'
import { activeHolds } from '../holds/index.js'
import { enqueueJob } from '../jobs/index.js'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'
import { decodeKeyset, type KeysetRow, keysetPage } from '../lib/paging.js'
import { systemActor } from '../lib/system.js'
import type { Notifier } from '../notifications/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { EXECUTE_DELETION } from './execute.js'
import type { DeletionGate } from './gates.js'
import { cancelReason, creationInput, decisionInput } from './input.js'
import {
  type ItemState,
  insertItems,
  itemCounts,
  itemsOf,
  pageOfItems,
  planChangedCounts,
  resetFailedItems,
} from './items-sql.js'
import { type DeletionNotificationType, deletionEvent } from './notifications.js'
import { type Plan, type PlanProblem, resolvePlan, type Target, type Verb } from './plan.js'
import { restoreItems } from './restore.js'
import {
  type DeletionFilters,
  type DeletionRow,
  expireOverdue,
  findByIdempotencyKey,
  getDeletion,
  getDeletionSummary,
  insertApproval,
  insertDeletion,
  listApprovals,
  listDeletions,
  setDeletionState,
} from './sql.js'
import { assertTransition, canTransition, type DeletionState } from './state-machine.js'
import type { UsageGuard } from './usage-check.js'
import { blockedNow } from './verify.js'
import { type DeletionItemView, type DeletionView, toItemView, toView } from './views.js'

export type { DeletionItemView, DeletionView } from './views.js'

export interface CreateDeletionInput {
  registry: string
  verb: Verb
  targets: Target[]
  reason: string
  ticket?: string
  dryRun?: boolean
  /**
   * At least one approval even where the rules need none: a retention policy in `propose` mode
   * files requests a person must look at.
   */
  requireApproval?: string
}

/** What `list` filters on: the SQL filters, and the caller's approval inbox. */
export interface DeletionListFilters extends DeletionFilters {
  /** Only requests the caller may approve now and has not decided on yet. */
  awaitingMyApproval?: boolean
}

/** Whether the caller may do something with a request now, and if not, why not. */
export interface ActionVerdict {
  allowed: boolean
  reason: string | null
}

export interface DeletionActions {
  approve: ActionVerdict
  reject: ActionVerdict
  cancel: ActionVerdict
  retry: ActionVerdict
  restore: ActionVerdict
  replan: ActionVerdict
}

/** Rows read per round while the inbox filters by eligibility, which is not SQL. */
const INBOX_BATCH = 200
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The plan with at least one approval from the owning team's approvers (or admins), and why. */
function withRequiredApproval(plan: Plan, why: string | undefined): Plan {
  if (!why || plan.approvals.count > 0) return plan
  const from = plan.approvals.from.includes('owning-team-approvers')
    ? plan.approvals.from
    : (['owning-team-approvers', ...plan.approvals.from] as Plan['approvals']['from'])
  return {
    ...plan,
    approvals: { ...plan.approvals, count: 1, from, reasons: [...plan.approvals.reasons, why] },
  }
}

const PROBLEM_ERRORS: Record<PlanProblem['code'], (message: string) => Error> = {
  REGENT_PROTECTED: (m) => new errors.PROTECTED(m),
  REGENT_HELD: (m) => new errors.HELD(m),
  REGENT_INDEX_CHILD_IN_USE: (m) => new errors.INDEX_CHILD_IN_USE(m),
  REGENT_UNTAG_IMPOSSIBLE: (m) => new errors.UNTAG_IMPOSSIBLE(m),
  REGENT_REGISTRY_DELETE_DISABLED: (m) =>
    Object.assign(new errors.UNTAG_IMPOSSIBLE(m), { code: 'REGENT_REGISTRY_DELETE_DISABLED' }),
  REGENT_LEGACY_TARGET: (m) => new errors.LEGACY_TARGET(m),
  REGENT_TAG_NOT_FOUND: (m) =>
    Object.assign(new errors.NOTHING_TO_DELETE(m), { code: 'REGENT_TAG_NOT_FOUND', statusCode: 404 }),
  REGENT_NOTHING_TO_DELETE: (m) => new errors.NOTHING_TO_DELETE(m),
  REGENT_IN_USE: (m) => new errors.IN_USE(m),
  REGENT_USAGE_UNKNOWN: (m) => new errors.USAGE_UNKNOWN(m),
}

/**
 * Governed deletion requests: plan, authorize, decide how many approvals, record every state
 * change with its audit event in one transaction. Execution (issue: jobs) starts from `approved`.
 */
export class DeletionService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly registries: RegistrySet,
    private readonly browse: BrowseService,
    private readonly governance: GovernanceConfig,
    private readonly execution: { maxAttempts: number },
    private readonly notifier?: Notifier,
    private readonly usage?: UsageGuard,
  ) {}

  /** What other features say before executions and restores run (see gates.ts). */
  readonly gates: DeletionGate[] = []

  addGate(gate: DeletionGate): void {
    this.gates.push(gate)
  }

  /** A plan without creating anything: the same resolver and checks as `create`. */
  async plan(principal: Principal, context: RequestContext, given: CreateDeletionInput): Promise<Plan> {
    const input = creationInput(given)
    // Ownership depends only on config and the named repositories: refuse before any registry call.
    await this.authorizeRequester(principal, context, input, this.repositoriesOf(input))
    return this.resolve(input, { fresh: false })
  }

  async create(
    principal: Principal,
    context: RequestContext,
    given: CreateDeletionInput,
    idempotencyKey?: string,
    /**
     * Sees the resolved plan before anything is stored and may throw to refuse it (a retention run
     * refuses tags it never judged). The plan is resolved once, for both.
     */
    options: {
      vetPlan?: (plan: Plan) => void
      /** Files the changed plan of that request for fresh approval, cancelling it if it still waits. */
      replanOf?: DeletionRow
    } = {},
  ): Promise<{ deletion: DeletionView; created: boolean }> {
    const input = creationInput(given)
    const fingerprint = fingerprintOf(principal, input)
    if (idempotencyKey) {
      const existing = await findByIdempotencyKey(this.pool, principal.subject, idempotencyKey)
      if (existing) return this.replay(existing, fingerprint, idempotencyKey)
    }

    await this.authorizeRequester(principal, context, input, this.repositoriesOf(input))
    const plan = withRequiredApproval(await this.resolve(input, { fresh: true }), input.requireApproval)
    const problem = plan.problems[0]
    if (problem) {
      await this.audit(principal, context, {
        action: 'deletion.refused',
        outcome: 'refused',
        registry: input.registry,
        details: { code: problem.code, message: problem.message, verb: input.verb, planHash: plan.hash },
      })
      throw PROBLEM_ERRORS[problem.code](problem.message)
    }
    options.vetPlan?.(plan)

    const needsApproval = plan.approvals.count > 0
    const state: DeletionState = needsApproval ? 'awaiting_approval' : 'approved'
    const expiresAt = needsApproval
      ? new Date(Date.now() + this.governance.approvals.expireAfterHours * 3_600_000)
      : null
    const inserted = await withTransaction(this.pool, async (client) => {
      const row = await insertDeletion(client, {
        registry: input.registry,
        verb: input.verb,
        targets: input.targets,
        reason: input.reason.trim(),
        ticket: input.ticket ?? null,
        requester_subject: principal.subject,
        requester_on_behalf_of: principal.onBehalfOf ?? null,
        requester_person: personOf(principal),
        requester_teams: principal.teams,
        requester_channel: principal.channel,
        state,
        plan,
        plan_hash: plan.hash,
        approval_requirement: plan.approvals,
        owning_teams: [...new Set(plan.repositories.flatMap((r) => r.owningTeams))],
        idempotency_key: idempotencyKey ?? null,
        request_fingerprint: idempotencyKey ? fingerprint : null,
        expires_at: expiresAt,
        replan_of: options.replanOf?.id ?? null,
      })
      // Lost a race with a concurrent retry carrying the same key: nothing written here.
      if (!row) return undefined
      if (options.replanOf) await this.supersede(client, principal, context, options.replanOf, row.id)
      await appendAuditEvent(client, {
        ...auditActor(principal, context),
        action: 'deletion.requested',
        outcome: state,
        registry: row.registry,
        deletionId: row.id,
        details: {
          verb: row.verb,
          reason: row.reason,
          ticket: row.ticket,
          planHash: plan.hash,
          items: plan.items.length,
          approvalsRequired: plan.approvals.count,
          ...(options.replanOf ? { replanOf: options.replanOf.id } : {}),
        },
      })
      await this.announce(client, row, 'deletion.requested')
      if (!needsApproval) {
        await appendAuditEvent(client, {
          ...auditActor(principal, context),
          action: 'deletion.approved',
          outcome: 'approved',
          registry: row.registry,
          deletionId: row.id,
          details: { by: 'rules', reasons: plan.approvals.reasons },
        })
        const queued = await this.enqueueExecution(client, row, auditActor(principal, context), 'first run')
        await this.announce(client, queued, 'deletion.approved')
        return queued
      }
      return row
    })
    if (!inserted) {
      const existing = await findByIdempotencyKey(this.pool, principal.subject, idempotencyKey!)
      return this.replay(existing!, fingerprint, idempotencyKey!)
    }
    return { deletion: await this.view(inserted), created: true }
  }

  /** `summary` leaves the plan's items out: cheap enough to poll (page through `items` instead). */
  async get(principal: Principal, id: string, view: 'full' | 'summary' = 'full'): Promise<DeletionView> {
    if (view === 'full') return this.view(await this.visibleRow(principal, id))
    const row = await getDeletionSummary(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    return this.view(row)
  }

  /** Whether the caller may see the request (what `get` answers 404 for). */
  async isVisible(principal: Principal, id: string): Promise<boolean> {
    if (!UUID.test(id)) return false
    const row = await getDeletion(this.pool, id)
    return row !== undefined && visible(principal, row)
  }

  /** A request's items with what execution did to each, in plan order, a page at a time. */
  async items(
    principal: Principal,
    id: string,
    page: { limit: number; cursor?: string; state?: ItemState },
  ): Promise<{ items: DeletionItemView[]; nextCursor: string | null }> {
    await this.visibleRow(principal, id)
    const after = decodeCursor(page.cursor, ['position'])?.position
    const rows = await pageOfItems(this.pool, id, {
      afterPosition: after === undefined ? -1 : Number(after),
      limit: page.limit + 1,
      ...(page.state ? { state: page.state } : {}),
    })
    const pageRows = rows.slice(0, page.limit)
    const last = pageRows.at(-1)
    return {
      items: pageRows.map(toItemView),
      nextCursor: rows.length > page.limit && last ? encodeCursor({ position: String(last.position) }) : null,
    }
  }

  /**
   * What the caller may do with the request now, by the same rules `decide`, `cancel`, `retry`
   * and `restore` enforce, so a user interface offers only what would be accepted.
   */
  async actions(principal: Principal, id: string): Promise<DeletionActions> {
    const row = await getDeletion(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    // Decided: this person, or this credential relaying for someone else (a token counts once).
    const decided = (await listApprovals(this.pool, [id])).some(
      (a) => a.approver_person === personOf(principal) || a.approver_subject === principal.subject,
    )
    const state = row.state.replace('_', ' ')
    const decision = verdict(() => {
      if (row.state !== 'awaiting_approval') return `the request is ${state}`
      if (row.expires_at && row.expires_at <= new Date()) return 'the approval window has closed'
      if (decided) return 'you have already decided on this request'
      const eligible = mayApprove(
        principal,
        row.requester_person,
        row.approval_requirement,
        row.owning_teams,
        row.requester_subject,
      )
      return eligible.ok ? null : eligible.message
    })
    const ownerOnly = (what: string, allowed: boolean) =>
      verdict(() => {
        if (!requesterOrAdmin(principal, row)) return `only the requester or an admin may ${what} a request`
        return allowed ? null : `a ${state} request cannot be ${what === 'retry' ? 'retried' : 'cancelled'}`
      })
    const restore = verdict(() => {
      if (!mayRestore(principal, row)) return 'restoring needs an admin or an approver of the owning team'
      if (!canTransition(row.state, 'restored')) return `a ${state} request cannot be restored`
      return null
    })
    return {
      approve: decision,
      reject: decision,
      cancel: ownerOnly('cancel', canTransition(row.state, 'cancelled')),
      retry: ownerOnly('retry', row.state === 'failed' || row.state === 'partially_failed'),
      restore,
      replan: verdict(() => {
        if (!requesterOrAdmin(principal, row))
          return 'only the requester or an admin may file a request again'
        return REPLANNABLE.has(row.state) ? null : `a ${state} request is not filed again`
      }),
    }
  }

  async list(
    principal: Principal,
    filters: DeletionListFilters,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: DeletionView[]; nextCursor: string | null }> {
    if (principal.roles.length === 0)
      throw new errors.FORBIDDEN('listing deletions needs at least the viewer role')
    const { awaitingMyApproval, ...sqlFilters } = filters
    if (awaitingMyApproval) return this.awaitingApprovalBy(principal, sqlFilters, page)
    const after = decodeKeyset(page.cursor)
    const rows = await listDeletions(
      this.pool,
      sqlFilters,
      isAdmin(principal) ? null : { person: personOf(principal), teams: principal.teams },
      { limit: page.limit + 1, ...(after ? { after } : {}) },
    )
    return this.page(rows, page.limit)
  }

  /**
   * The caller's inbox: requests awaiting approval that `mayApprove` lets them decide (never their
   * own), not expired, and not decided by them yet, newest first. Eligibility is not SQL, so rows
   * are read in rounds and filtered until the page is full; the cursor is the last row returned.
   */
  private async awaitingApprovalBy(
    principal: Principal,
    filters: DeletionFilters,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: DeletionView[]; nextCursor: string | null }> {
    if (filters.state && filters.state !== 'awaiting_approval') return { items: [], nextCursor: null }
    const me = personOf(principal)
    const visibleTo = isAdmin(principal) ? null : { person: me, teams: principal.teams }
    let after = decodeKeyset(page.cursor)
    const found: (DeletionRow & KeysetRow)[] = []
    const now = new Date()
    while (found.length <= page.limit) {
      const batch = await listDeletions(this.pool, { ...filters, state: 'awaiting_approval' }, visibleTo, {
        limit: INBOX_BATCH,
        ...(after ? { after } : {}),
      })
      const approvals = await listApprovals(
        this.pool,
        batch.map((row) => row.id),
      )
      const decided = new Set(
        approvals
          .filter((a) => a.approver_person === me || a.approver_subject === principal.subject)
          .map((a) => a.deletion_id),
      )
      for (const row of batch) {
        if (decided.has(row.id) || (row.expires_at && row.expires_at <= now)) continue
        const eligible = mayApprove(
          principal,
          row.requester_person,
          row.approval_requirement,
          row.owning_teams,
          row.requester_subject,
        )
        if (!eligible.ok) continue
        found.push(row)
        if (found.length > page.limit) break
      }
      const last = batch.at(-1)
      if (batch.length < INBOX_BATCH || !last) break
      after = { createdAt: last.created_key, id: last.id }
    }
    return this.page(found, page.limit)
  }

  /** One page of views from up to `limit + 1` rows: the extra row only says there is more. */
  private async page(rows: (DeletionRow & KeysetRow)[], limit: number) {
    const shown = keysetPage(rows, limit)
    return { items: await this.views(shown.rows), nextCursor: shown.nextCursor }
  }

  async decide(
    principal: Principal,
    context: RequestContext,
    id: string,
    given: { decision: 'approve' | 'reject'; comment?: string; planHash?: string },
  ): Promise<DeletionView> {
    const input = decisionInput(given)
    // Refusals are audited and committed, then thrown: the audit event must survive the refusal.
    const { row, refusal } = await withTransaction(this.pool, async (client) => {
      const current = await getDeletion(client, id, { forUpdate: true })
      if (!current || !visible(principal, current)) throw new errors.DELETION_NOT_FOUND(id)
      const actor = auditActor(principal, context)
      const about = { registry: current.registry, deletionId: current.id }
      if (current.state === 'awaiting_approval' && current.expires_at && current.expires_at <= new Date()) {
        const expired = await this.transition(client, current, 'expired', {
          ...systemActor(context.requestId),
          ...about,
        })
        return { row: expired, refusal: new errors.REQUEST_EXPIRED(id) }
      }
      assertTransition(current.state, input.decision === 'approve' ? 'approved' : 'rejected')
      if (input.planHash && input.planHash !== current.plan_hash)
        throw new errors.PLAN_CHANGED(input.planHash, current.plan_hash)

      const eligible = mayApprove(
        principal,
        current.requester_person,
        current.approval_requirement,
        current.owning_teams,
        current.requester_subject,
      )
      const refuse = async (code: string, refusal: Error) => {
        await appendAuditEvent(client, {
          ...actor,
          ...about,
          action: 'deletion.approval_refused',
          outcome: 'refused',
          details: { code, decision: input.decision, reason: refusal.message },
        })
        return { row: current, refusal }
      }
      if (!eligible.ok) {
        return refuse(
          eligible.code,
          eligible.code === 'REGENT_SELF_APPROVAL'
            ? new errors.SELF_APPROVAL(eligible.message)
            : new errors.APPROVER_NOT_ELIGIBLE(eligible.message),
        )
      }
      // One token counts once: a bot relaying decisions for several people is still one voice.
      const byCredential = (await listApprovals(client, [current.id])).find(
        (a) => a.approver_subject === principal.subject && a.approver_person !== personOf(principal),
      )
      if (byCredential) {
        return refuse(
          'REGENT_CREDENTIAL_ALREADY_DECIDED',
          new errors.CREDENTIAL_ALREADY_DECIDED(principal.subject, byCredential.approver_person),
        )
      }
      if (input.decision === 'approve') {
        const blocked = blockedNow(current.plan, this.governance, await activeHolds(client), new Date())
        if (blocked) {
          return refuse(
            blocked.code,
            blocked.code === 'REGENT_HELD'
              ? new errors.HELD(blocked.message)
              : new errors.PROTECTED(blocked.message),
          )
        }
      }
      const approval = await insertApproval(client, {
        deletion_id: current.id,
        approver_subject: principal.subject,
        approver_on_behalf_of: principal.onBehalfOf ?? null,
        approver_person: personOf(principal),
        approved_as: eligible.as,
        decision: input.decision,
        comment: input.comment ?? null,
        plan_hash: current.plan_hash,
      })
      if (!approval) throw new errors.ALREADY_DECIDED(personOf(principal))
      await appendAuditEvent(client, {
        ...actor,
        ...about,
        action: input.decision === 'approve' ? 'deletion.approval_given' : 'deletion.rejection_given',
        outcome: input.decision,
        details: { as: eligible.as, comment: input.comment ?? null, planHash: current.plan_hash },
      })
      if (input.decision === 'reject') {
        const rejected = await this.transition(client, current, 'rejected', { ...actor, ...about })
        await this.announce(client, rejected, 'deletion.rejected')
        return { row: rejected, refusal: undefined }
      }
      const given = (await listApprovals(client, [current.id])).filter((a) => a.decision === 'approve')
      const progress = approvalProgress(
        current.approval_requirement,
        given.map((a) => ({
          approver: a.approver_person,
          credential: a.approver_subject,
          as: a.approved_as,
        })),
      )
      if (!progress.satisfied) return { row: current, refusal: undefined }
      const approved = await this.transition(client, current, 'approved', { ...actor, ...about })
      const queued = await this.enqueueExecution(client, approved, actor, 'first run')
      await this.announce(client, queued, 'deletion.approved')
      return { row: queued, refusal: undefined }
    })
    if (refusal) throw refusal
    return this.view(row)
  }

  async cancel(
    principal: Principal,
    context: RequestContext,
    id: string,
    given?: string,
  ): Promise<DeletionView> {
    const reason = cancelReason(given)
    const { row, refusal } = await withTransaction(this.pool, async (client) => {
      const current = await getDeletion(client, id, { forUpdate: true })
      if (!current || !visible(principal, current)) throw new errors.DELETION_NOT_FOUND(id)
      const actor = auditActor(principal, context)
      const about = { registry: current.registry, deletionId: current.id }
      if (!requesterOrAdmin(principal, current)) {
        await appendAuditEvent(client, {
          ...actor,
          ...about,
          action: 'deletion.cancel_refused',
          outcome: 'refused',
          details: {},
        })
        return {
          row: current,
          refusal: new errors.FORBIDDEN('only the requester or an admin may cancel a request'),
        }
      }
      assertTransition(current.state, 'cancelled')
      const cancelled = await this.transition(client, current, 'cancelled', {
        ...actor,
        ...about,
        details: { reason: reason ?? null },
      })
      return { row: cancelled, refusal: undefined }
    })
    if (refusal) throw refusal
    return this.view(row)
  }

  /** Re-runs only the failed items of a finished request (requester or admin). */
  async retry(principal: Principal, context: RequestContext, id: string): Promise<DeletionView> {
    const { row, refusal } = await withTransaction(this.pool, async (client) => {
      const current = await getDeletion(client, id, { forUpdate: true })
      if (!current || !visible(principal, current)) throw new errors.DELETION_NOT_FOUND(id)
      const actor = auditActor(principal, context)
      if (!requesterOrAdmin(principal, current)) {
        return {
          row: current,
          refusal: new errors.FORBIDDEN('only the requester or an admin may retry a request'),
        }
      }
      assertTransition(current.state, 'queued')
      const reset = await resetFailedItems(client, current.id)
      const queued = await this.enqueueExecution(client, current, actor, `retry of ${reset} failed item(s)`)
      return { row: queued, refusal: undefined }
    })
    if (refusal) throw refusal
    return this.view(row)
  }

  /**
   * Puts deleted manifests back and re-points their tags while the registry still holds the blobs
   * (until its next GC), never over a tag pushed again since (see restore.ts). `force`, for admins
   * only, re-points such tags too.
   */
  async restore(
    principal: Principal,
    context: RequestContext,
    id: string,
    options: { force?: boolean } = {},
  ): Promise<DeletionView> {
    const current = await this.visibleRow(principal, id)
    const approver = mayRestore(principal, current)
    if (!approver || (options.force && !isAdmin(principal))) {
      await this.audit(principal, context, {
        action: 'deletion.restore_refused',
        outcome: 'refused',
        registry: current.registry,
        deletionId: id,
        details: { force: options.force === true },
      })
      throw new errors.FORBIDDEN(
        approver
          ? 'only an admin may force a restore over tags pushed again since'
          : 'restoring needs an admin or an approver of the owning team',
      )
    }
    if (current.state !== 'succeeded' && current.state !== 'partially_failed')
      throw new errors.ILLEGAL_TRANSITION(current.state, 'restored')
    // A removed dangling tag gives nothing back: it resolved to nothing.
    const deleted = (await itemsOf(this.pool, id, 'deleted')).filter((item) => item.restore_manifest !== null)
    if (deleted.some((item) => !item.restorable) || deleted.length === 0) {
      throw new errors.RESTORE_WINDOW_CLOSED(
        id,
        deleted.length === 0
          ? 'nothing was deleted'
          : 'a garbage collection of the registry has run since the deletion, so its blobs may be gone',
      )
    }
    for (const gate of this.gates) {
      const blocked = await gate.restoreBlocked?.(current.registry)
      if (blocked) throw new errors.RESTORE_WINDOW_CLOSED(id, blocked)
    }
    const actor = auditActor(principal, context)
    const summary = await restoreItems(
      { pool: this.pool, registries: this.registries },
      current,
      deleted,
      actor,
      options.force === true,
    )
    const row = await withTransaction(this.pool, async (db) => {
      const locked = await getDeletion(db, id, { forUpdate: true })
      const restored = await this.transition(db, locked!, 'restored', {
        ...actor,
        registry: current.registry,
        deletionId: id,
        details: { ...summary },
      })
      await this.announce(db, restored, 'deletion.restored')
      return restored
    })
    return this.view(row)
  }

  /**
   * Files a request again with a fresh plan for fresh approval, after its plan changed: before
   * approval (it is cancelled, pointing at the new one), or after execution left items alone
   * because the registry had changed (the new request covers those items).
   */
  async replan(
    principal: Principal,
    context: RequestContext,
    id: string,
    idempotencyKey?: string,
  ): Promise<{ deletion: DeletionView; created: boolean }> {
    const current = await this.visibleRow(principal, id)
    if (!requesterOrAdmin(principal, current))
      throw new errors.FORBIDDEN('only the requester or an admin may file a request again')
    if (!REPLANNABLE.has(current.state)) throw new errors.ILLEGAL_TRANSITION(current.state, 'replanned')
    const left = (await itemsOf(this.pool, id)).filter(
      (item) => item.state === 'failed' || (item.state === 'skipped' && item.outcome === 'plan_changed'),
    )
    const targets =
      current.state === 'awaiting_approval' || current.state === 'expired'
        ? current.targets
        : [
            ...new Map(
              left.map((item) => {
                const target: Target =
                  current.verb === 'untag'
                    ? { repository: item.repository, tag: item.tag! }
                    : { repository: item.repository, digest: item.digest }
                return [`${target.repository}\u0000${target.tag ?? target.digest}`, target] as const
              }),
            ).values(),
          ]
    if (targets.length === 0)
      throw new errors.NOTHING_TO_DELETE(`request ${id} left no item that its plan change stopped`)
    return this.create(
      principal,
      context,
      {
        registry: current.registry,
        verb: current.verb,
        targets,
        reason: current.reason,
        ...(current.ticket ? { ticket: current.ticket } : {}),
      },
      idempotencyKey,
      { replanOf: current },
    )
  }

  /** The replaced request: cancelled if it still waits for approval, and audited either way. */
  private async supersede(
    client: pg.PoolClient,
    principal: Principal,
    context: RequestContext,
    previous: DeletionRow,
    by: string,
  ): Promise<void> {
    const locked = await getDeletion(client, previous.id, { forUpdate: true })
    const about = { ...auditActor(principal, context), registry: previous.registry, deletionId: previous.id }
    if (locked?.state === 'awaiting_approval') {
      await this.transition(client, locked, 'cancelled', { ...about, details: { replacedBy: by } })
      return
    }
    await appendAuditEvent(client, {
      ...about,
      action: 'deletion.replanned',
      outcome: 'replanned',
      details: { replacedBy: by },
    })
  }

  /**
   * approved → queued: the plan's items, the execution job and the audit event commit together with
   * the approval, so an approved request always has a job and a job always has its request.
   */
  private async enqueueExecution(
    client: pg.PoolClient,
    row: DeletionRow,
    actor: AuditActor,
    why: string,
  ): Promise<DeletionRow> {
    await insertItems(client, row.id, row.plan.items)
    const { job } = await enqueueJob(client, {
      kind: EXECUTE_DELETION,
      payload: { deletionId: row.id },
      registry: row.registry,
      uniqueKey: `deletion:${row.id}:${randomUUID()}`,
      maxAttempts: this.execution.maxAttempts,
    })
    const queued = await this.transition(client, row, 'queued', {
      ...actor,
      registry: row.registry,
      deletionId: row.id,
      details: { jobId: job.id, why },
    })
    await client.query('UPDATE deletion_requests SET job_id = $2::uuid WHERE id = $1::uuid', [row.id, job.id])
    return { ...queued, job_id: job.id }
  }

  /**
   * Emits a notification about the request inside the caller's transaction (an outbox: it exists
   * only if the state change commits). The execution handler calls it too, for the final states.
   */
  async announce(client: pg.PoolClient, row: DeletionRow, type: DeletionNotificationType): Promise<void> {
    if (!this.notifier?.active) return
    const approvals = await listApprovals(client, [row.id])
    const counts = await itemCounts(client, [row.id])
    const changed = await planChangedCounts(client, [row.id])
    const view = toView(row, approvals, counts.get(row.id), changed.get(row.id) ?? 0)
    await this.notifier.notify(client, deletionEvent(type, view, row.owning_teams))
  }

  /** Expires requests whose approval window closed; safe to run on every replica. */
  async expireOverdue(): Promise<number> {
    return withTransaction(this.pool, async (client) => {
      const expired = await expireOverdue(client)
      for (const row of expired) {
        await appendAuditEvent(client, {
          ...systemActor('expiry-sweep'),
          action: 'deletion.expired',
          outcome: 'expired',
          registry: row.registry,
          deletionId: row.id,
          details: { expiresAt: row.expires_at?.toISOString() ?? null },
        })
      }
      return expired.length
    })
  }

  private async transition(
    client: pg.PoolClient,
    current: DeletionRow,
    to: DeletionState,
    audit: Omit<AuditInput, 'action' | 'outcome'>,
  ): Promise<DeletionRow> {
    assertTransition(current.state, to)
    const updated = await setDeletionState(client, current.id, current.state, to)
    if (!updated) throw new errors.ILLEGAL_TRANSITION(current.state, to)
    await appendAuditEvent(client, {
      ...audit,
      action: `deletion.${to}`,
      outcome: to,
      details: { from: current.state, ...audit.details },
    })
    return updated
  }

  private async resolve(input: CreateDeletionInput, options: { fresh: boolean }): Promise<Plan> {
    const holds = await activeHolds(this.pool)
    return resolvePlan(
      {
        registries: this.registries,
        browse: this.browse,
        governance: this.governance,
        holds,
        now: new Date(),
        fresh: options.fresh,
        ...(this.usage ? { usage: this.usage } : {}),
      },
      input.registry,
      input.verb,
      input.targets,
    )
  }

  private repositoriesOf(input: CreateDeletionInput) {
    this.registries.get(input.registry)
    return [...new Set(input.targets.map((t) => t.repository))].map((repository) => ({
      repository,
      owningTeams: owningTeams(this.governance, input.registry, repository),
    }))
  }

  private async authorizeRequester(
    principal: Principal,
    context: RequestContext,
    input: CreateDeletionInput,
    repositories: { repository: string; owningTeams: string[] }[],
  ) {
    const eligible = mayRequest(principal, repositories)
    if (eligible.ok) return
    await this.audit(principal, context, {
      action: 'deletion.denied',
      outcome: 'denied',
      registry: input.registry,
      repository: repositories.length === 1 ? repositories[0]!.repository : null,
      details: {
        code: eligible.code,
        reason: eligible.message,
        verb: input.verb,
        dryRun: input.dryRun === true,
      },
    })
    throw new errors.REQUESTER_NOT_ELIGIBLE(eligible.message)
  }

  private async audit(
    principal: Principal,
    context: RequestContext,
    event: Omit<AuditInput, keyof ReturnType<typeof auditActor>>,
  ) {
    await auditAlone(this.pool, auditActor(principal, context), event)
  }

  private async replay(existing: DeletionRow, fingerprint: string, key: string) {
    if (existing.request_fingerprint !== fingerprint) throw new errors.IDEMPOTENCY_CONFLICT(key)
    return { deletion: await this.view(existing), created: false }
  }

  private async visibleRow(principal: Principal, id: string): Promise<DeletionRow> {
    const row = await getDeletion(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    return row
  }

  private async view(row: DeletionRow): Promise<DeletionView> {
    return (await this.views([row]))[0]!
  }

  private async views(rows: DeletionRow[]): Promise<DeletionView[]> {
    const ids = rows.map((r) => r.id)
    const [approvals, counts, changed] = await Promise.all([
      listApprovals(this.pool, ids),
      itemCounts(this.pool, ids),
      planChangedCounts(this.pool, ids),
    ])
    return rows.map((row) =>
      toView(
        row,
        approvals.filter((a) => a.deletion_id === row.id),
        counts.get(row.id),
        changed.get(row.id) ?? 0,
      ),
    )
  }
}

/** States a request can be filed again from: still waiting, or executed with items left alone. */
const REPLANNABLE = new Set<DeletionState>(['awaiting_approval', 'expired', 'partially_failed', 'failed'])

function fingerprintOf(principal: Principal, input: CreateDeletionInput): string {
  const { dryRun: _dryRun, ...body } = input
  return createHash('sha256')
    .update(canonicalJson({ ...body, ticket: body.ticket ?? null, onBehalfOf: principal.onBehalfOf ?? null }))
    .digest('hex')
}

/** Admins see everything; others their own requests and those of their teams' repositories. */
function visible(principal: Principal, row: DeletionRow): boolean {
  if (isAdmin(principal)) return true
  if (personOf(principal) === row.requester_person || principal.subject === row.requester_subject) return true
  return principal.roles.length > 0 && row.owning_teams.some((team) => principal.teams.includes(team))
}

function requesterOrAdmin(principal: Principal, row: DeletionRow): boolean {
  return personOf(principal) === row.requester_person || isAdmin(principal)
}

/** Restoring is an approver's call: an admin, or an approver of a team owning the repositories. */
function mayRestore(principal: Principal, row: DeletionRow): boolean {
  return (
    isAdmin(principal) ||
    (principal.roles.includes('approver') && row.owning_teams.some((t) => principal.teams.includes(t)))
  )
}

/** `why` answers the reason it is not allowed, or null when it is. */
function verdict(why: () => string | null): ActionVerdict {
  const reason = why()
  return { allowed: reason === null, reason }
}
