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
import { gcBlocksDeletions } from '../gc/sql.js'
import { activeHolds } from '../governance/holds.js'
import {
  approvalProgress,
  type GovernanceConfig,
  mayApprove,
  mayRequest,
  owningTeams,
} from '../governance/index.js'
import { formatBytes } from '../http/format.js'
import { enqueueJob } from '../jobs/index.js'
import { decodeKeyset, keysetPage } from '../lib/paging.js'
import type { Notifier } from '../notifications/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { EXECUTE_DELETION } from './execute.js'
import { cancelReason, creationInput, decisionInput } from './input.js'
import {
  type ItemCounts,
  type ItemRow,
  insertItems,
  itemCounts,
  itemsOf,
  markRestored,
  resetFailedItems,
} from './items-sql.js'
import { type DeletionNotificationType, deletionEvent } from './notifications.js'
import { type Plan, type PlanProblem, resolvePlan, type Target, type Verb } from './plan.js'
import {
  type ApprovalRow,
  type DeletionFilters,
  type DeletionRow,
  expireOverdue,
  findByIdempotencyKey,
  getDeletion,
  insertApproval,
  insertDeletion,
  listApprovals,
  listDeletions,
  setDeletionState,
} from './sql.js'
import { assertTransition, type DeletionState } from './state-machine.js'

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

export interface DeletionView {
  id: string
  registry: string
  verb: Verb
  state: DeletionState
  reason: string
  ticket: string | null
  requester: { subject: string; onBehalfOf: string | null; person: string }
  targets: Target[]
  plan: Plan
  planHash: string
  approvals: {
    required: Plan['approvals']
    missing: number
    missingAdmins: number
    given: { approver: string; as: string; decision: string; comment: string | null; at: string }[]
  }
  /** Items done, skipped, failed and still pending, once execution has begun. */
  progress: ItemCounts
  jobId: string | null
  expiresAt: string | null
  createdAt: string
  updatedAt: string
  /** One line a chat bot can post as it is. */
  summary: string
}

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
  ) {}

  /** A plan without creating anything: the same resolver and checks as `create`. */
  async plan(principal: Principal, context: RequestContext, given: CreateDeletionInput): Promise<Plan> {
    const input = creationInput(given)
    // Ownership depends only on config and the named repositories: refuse before any registry call.
    await this.authorizeRequester(principal, context, input, this.repositoriesOf(input))
    return this.resolve(input)
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
    options: { vetPlan?: (plan: Plan) => void } = {},
  ): Promise<{ deletion: DeletionView; created: boolean }> {
    const input = creationInput(given)
    const fingerprint = fingerprintOf(principal, input)
    if (idempotencyKey) {
      const existing = await findByIdempotencyKey(this.pool, principal.subject, idempotencyKey)
      if (existing) return this.replay(existing, fingerprint, idempotencyKey)
    }

    await this.authorizeRequester(principal, context, input, this.repositoriesOf(input))
    const plan = withRequiredApproval(await this.resolve(input), input.requireApproval)
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
      })
      // Lost a race with a concurrent retry carrying the same key: nothing written here.
      if (!row) return undefined
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

  async get(principal: Principal, id: string): Promise<DeletionView> {
    const row = await getDeletion(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    return this.view(row)
  }

  async list(
    principal: Principal,
    filters: DeletionFilters,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: DeletionView[]; nextCursor: string | null }> {
    if (principal.roles.length === 0)
      throw new errors.FORBIDDEN('listing deletions needs at least the viewer role')
    const after = decodeKeyset(page.cursor)
    const rows = await listDeletions(
      this.pool,
      filters,
      isAdmin(principal) ? null : { person: personOf(principal), teams: principal.teams },
      { limit: page.limit + 1, ...(after ? { after } : {}) },
    )
    const shown = keysetPage(rows, page.limit)
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
      if (!current || !visible(principal, current, { asApprover: true }))
        throw new errors.DELETION_NOT_FOUND(id)
      const actor = auditActor(principal, context)
      const about = { registry: current.registry, deletionId: current.id }
      if (current.state === 'awaiting_approval' && current.expires_at && current.expires_at <= new Date()) {
        const expired = await this.transition(client, current, 'expired', {
          ...systemActor(context),
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
      )
      if (!eligible.ok) {
        await appendAuditEvent(client, {
          ...actor,
          ...about,
          action: 'deletion.approval_refused',
          outcome: 'refused',
          details: { code: eligible.code, decision: input.decision, reason: eligible.message },
        })
        const refusal =
          eligible.code === 'REGENT_SELF_APPROVAL'
            ? new errors.SELF_APPROVAL(eligible.message)
            : new errors.APPROVER_NOT_ELIGIBLE(eligible.message)
        return { row: current, refusal }
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
        given.map((a) => ({ approver: a.approver_person, as: a.approved_as })),
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
      if (personOf(principal) !== current.requester_person && !isAdmin(principal)) {
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
      if (personOf(principal) !== current.requester_person && !isAdmin(principal)) {
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
   * Puts deleted manifests back and re-points their tags, while the registry still holds the blobs:
   * until its next GC. Children before the index that lists them, so the index is whole when its
   * tag reappears.
   */
  async restore(principal: Principal, context: RequestContext, id: string): Promise<DeletionView> {
    const current = await getDeletion(this.pool, id)
    if (!current || !visible(principal, current)) throw new errors.DELETION_NOT_FOUND(id)
    const approver =
      isAdmin(principal) ||
      (principal.roles.includes('approver') && current.owning_teams.some((t) => principal.teams.includes(t)))
    if (!approver) {
      await this.audit(principal, context, {
        action: 'deletion.restore_refused',
        outcome: 'refused',
        registry: current.registry,
        deletionId: id,
        details: {},
      })
      throw new errors.FORBIDDEN('restoring needs an admin or an approver of the owning team')
    }
    if (current.state !== 'succeeded' && current.state !== 'partially_failed')
      throw new errors.ILLEGAL_TRANSITION(current.state, 'restored')
    const deleted = await itemsOf(this.pool, id, 'deleted')
    const closed = deleted.filter((item) => !item.restorable)
    if (closed.length > 0 || deleted.length === 0) {
      throw new errors.RESTORE_WINDOW_CLOSED(
        id,
        deleted.length === 0
          ? 'nothing was deleted'
          : 'a garbage collection of the registry has run since the deletion, so its blobs may be gone',
      )
    }
    // Pushing manifests back while the collector sweeps could reference blobs it is deleting.
    if (await gcBlocksDeletions(this.pool, current.registry)) {
      throw new errors.RESTORE_WINDOW_CLOSED(
        id,
        `a garbage collection of ${current.registry} is running; try again when it ends`,
      )
    }
    const { client } = this.registries.get(current.registry)
    const ordered = [...deleted].sort((a, b) => restoreRank(a) - restoreRank(b) || a.position - b.position)
    for (const item of ordered) {
      const bytes = item.restore_manifest!
      const mediaType = item.restore_media_type!
      if (item.action !== 'untag') await client.putManifest(item.repository, item.digest, mediaType, bytes)
      for (const tag of item.restore_tags ?? [])
        await client.putManifest(item.repository, tag, mediaType, bytes)
      await withTransaction(this.pool, async (db) => {
        if (!(await markRestored(db, item))) return
        await appendAuditEvent(db, {
          ...auditActor(principal, context),
          action: 'manifest.restored',
          outcome: 'restored',
          registry: current.registry,
          repository: item.repository,
          tag: item.tag,
          digest: item.digest,
          deletionId: id,
          details: { tags: item.restore_tags ?? [] },
        })
      })
    }
    const row = await withTransaction(this.pool, async (db) => {
      const locked = await getDeletion(db, id, { forUpdate: true })
      const restored = await this.transition(db, locked!, 'restored', {
        ...auditActor(principal, context),
        registry: current.registry,
        deletionId: id,
      })
      await this.announce(db, restored, 'deletion.restored')
      return restored
    })
    return this.view(row)
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
    const view = toView(row, approvals, counts.get(row.id))
    await this.notifier.notify(client, deletionEvent(type, view, row.owning_teams))
  }

  /** Expires requests whose approval window closed; safe to run on every replica. */
  async expireOverdue(): Promise<number> {
    return withTransaction(this.pool, async (client) => {
      const expired = await expireOverdue(client)
      for (const row of expired) {
        await appendAuditEvent(client, {
          ...systemActor({ requestId: 'expiry-sweep' }),
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

  private async resolve(input: CreateDeletionInput): Promise<Plan> {
    const holds = await activeHolds(this.pool)
    return resolvePlan(
      {
        registries: this.registries,
        browse: this.browse,
        governance: this.governance,
        holds,
        now: new Date(),
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

  private async view(row: DeletionRow): Promise<DeletionView> {
    return (await this.views([row]))[0]!
  }

  private async views(rows: DeletionRow[]): Promise<DeletionView[]> {
    const ids = rows.map((r) => r.id)
    const [approvals, counts] = await Promise.all([listApprovals(this.pool, ids), itemCounts(this.pool, ids)])
    return rows.map((row) =>
      toView(
        row,
        approvals.filter((a) => a.deletion_id === row.id),
        counts.get(row.id),
      ),
    )
  }
}

function fingerprintOf(principal: Principal, input: CreateDeletionInput): string {
  const { dryRun: _dryRun, ...body } = input
  return createHash('sha256')
    .update(canonicalJson({ ...body, ticket: body.ticket ?? null, onBehalfOf: principal.onBehalfOf ?? null }))
    .digest('hex')
}

/** Admins see everything; others their own requests and those of their teams' repositories. */
function visible(principal: Principal, row: DeletionRow, _options: { asApprover?: boolean } = {}): boolean {
  if (isAdmin(principal)) return true
  if (personOf(principal) === row.requester_person || principal.subject === row.requester_subject) return true
  return principal.roles.length > 0 && row.owning_teams.some((team) => principal.teams.includes(team))
}

function systemActor(context: Pick<RequestContext, 'requestId'>) {
  return auditActor({ subject: 'regent', teams: [], roles: [], channel: 'system' }, context)
}

function restoreRank(item: ItemRow): number {
  return { 'delete-referrer': 0, 'delete-child': 1, 'delete-manifest': 2, untag: 2 }[item.action]
}

function toView(row: DeletionRow, approvals: ApprovalRow[], counts: ItemCounts | undefined): DeletionView {
  const given = approvals.filter((a) => a.decision === 'approve')
  const progress = approvalProgress(
    row.approval_requirement,
    given.map((a) => ({ approver: a.approver_person, as: a.approved_as })),
  )
  const view: Omit<DeletionView, 'summary'> = {
    id: row.id,
    registry: row.registry,
    verb: row.verb,
    state: row.state,
    reason: row.reason,
    ticket: row.ticket,
    requester: {
      subject: row.requester_subject,
      onBehalfOf: row.requester_on_behalf_of,
      person: row.requester_person,
    },
    targets: row.targets,
    plan: row.plan,
    planHash: row.plan_hash,
    approvals: {
      required: row.approval_requirement,
      missing: progress.missing,
      missingAdmins: progress.missingAdmins,
      given: approvals.map((a) => ({
        approver: a.approver_person,
        as: a.approved_as,
        decision: a.decision,
        comment: a.comment,
        at: a.created_at.toISOString(),
      })),
    },
    progress: counts ?? {
      total: row.plan.items.length,
      pending: row.plan.items.length,
      deleted: 0,
      skipped: 0,
      failed: 0,
    },
    jobId: row.job_id,
    expiresAt: row.expires_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  }
  return { ...view, summary: summarize(view) }
}

function summarize(view: Omit<DeletionView, 'summary'>): string {
  const tags = new Set(view.plan.items.flatMap((i) => i.vanishingTags.map((t) => `${i.repository}:${t}`)))
  const waiting =
    view.state === 'awaiting_approval' ? `, needs ${view.approvals.missing} more approval(s)` : ''
  const done =
    view.progress.deleted + view.progress.skipped + view.progress.failed > 0
      ? `, ${view.progress.deleted} deleted, ${view.progress.skipped} skipped, ${view.progress.failed} failed of ${view.progress.total}`
      : ''
  return `Deletion ${view.id.slice(0, 8)} (${view.verb} in ${view.registry}) is ${view.state.replace('_', ' ')}: ${view.plan.items.length} item(s), ${tags.size} tag(s), ~${formatBytes(view.plan.bytesFreed)}${waiting}${done}; requested by ${view.requester.person}`
}
