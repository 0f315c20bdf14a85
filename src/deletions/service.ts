import { appendAuditEvent, auditActor } from '../audit/index.js'
import { isAdmin, type Principal, personOf, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { approvalProgress, mayApprove } from '../governance/index.js'
import { activeHolds } from '../holds/index.js'
import { systemActor } from '../lib/system.js'
import { mayRestore, requesterOrAdmin, visible } from './core.js'
import { cancelReason, decisionInput } from './input.js'
import { itemsOf, resetFailedItems } from './items-sql.js'
import { DeletionRequests } from './requests.js'
import { restoreItems } from './restore.js'
import { getDeletion, insertApproval, listApprovals } from './sql.js'
import { assertTransition } from './state-machine.js'
import { blockedNow } from './verify.js'
import type { DeletionView } from './views.js'

export type { ActionVerdict, CreateDeletionInput, DeletionActions, DeletionListFilters } from './core.js'
export type { DeletionItemView, DeletionView } from './views.js'

/**
 * Governed deletion requests, the service routes and GraphQL use. This layer holds the decisions
 * on a filed request (approve, reject, cancel, retry, restore); filing and reading come from the
 * layers it extends. Every state change commits with its audit event; execution starts from
 * `approved` as a queued job.
 */
export class DeletionService extends DeletionRequests {
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
}
