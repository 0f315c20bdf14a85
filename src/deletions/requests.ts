import type pg from 'pg'
import { appendAuditEvent, auditActor } from '../audit/index.js'
import { type Principal, personOf, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { systemActor } from '../lib/system.js'
/** The plan with at least one approval from the owning team's approvers (or admins), and why. */ import {
  type CreateDeletionInput,
  fingerprintOf,
  REPLANNABLE,
  requesterOrAdmin,
} from './core.js'
import { creationInput } from './input.js'
import { itemsOf } from './items-sql.js'
import type { Plan, PlanProblem, Target } from './plan.js'
import { DeletionQueries } from './queries.js'
import { type DeletionRow, expireOverdue, findByIdempotencyKey, getDeletion, insertDeletion } from './sql.js'
import type { DeletionState } from './state-machine.js'
import type { DeletionView } from './views.js'

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
 * Filing requests: a plan (a dry run), a request with its plan and the approvals it needs, the
 * same request filed again after its plan changed, and the sweep that expires waiting ones.
 */
export class DeletionRequests extends DeletionQueries {
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
  protected async supersede(
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
}
