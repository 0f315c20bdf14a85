import { approvalProgress } from '../governance/index.js'
import { formatBytes } from '../http/format.js'
import type { ItemCounts, ItemRow } from './items-sql.js'
import type { Plan, Target, Verb } from './plan.js'
import type { ApprovalRow, DeletionRow, DeletionSummaryRow } from './sql.js'
import type { DeletionState } from './state-machine.js'

/** How requests and their items look to callers (REST, GraphQL, chat, notifications). */

export interface DeletionView {
  id: string
  registry: string
  verb: Verb
  state: DeletionState
  reason: string
  ticket: string | null
  requester: { subject: string; onBehalfOf: string | null; person: string }
  targets: Target[]
  /** In the summary view, `items` and `kept` are left out (page through /items instead). */
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
  /** Items not executed because executing them would have gone beyond the approved plan. */
  planChanged: number
  /** The request this one was filed again from, after its plan changed. */
  replanOf: string | null
  view: 'full' | 'summary'
  jobId: string | null
  expiresAt: string | null
  createdAt: string
  updatedAt: string
  /** One line a chat bot can post as it is. */
  summary: string
}

export interface DeletionItemView {
  position: number
  repository: string
  tag: string | null
  digest: string
  mediaType: string
  action: ItemRow['action']
  vanishingTags: string[]
  state: ItemRow['state']
  outcome: string | null
  errorCode: string | null
  error: string | null
  attempts: number
  restorable: boolean
  restoreOutcome: string | null
  restoreNote: string | null
  verifiedAt: string | null
  deleteIssuedAt: string | null
  finishedAt: string | null
}

export function toView(
  row: DeletionRow | DeletionSummaryRow,
  approvals: ApprovalRow[],
  counts: ItemCounts | undefined,
  planChanged: number,
): DeletionView {
  const view = 'plan_item_count' in row ? 'summary' : 'full'
  const given = approvals.filter((a) => a.decision === 'approve')
  const progress = approvalProgress(
    row.approval_requirement,
    given.map((a) => ({ approver: a.approver_person, credential: a.approver_subject, as: a.approved_as })),
  )
  const plan = { ...row.plan, kept: row.plan.kept ?? [] }
  const result: Omit<DeletionView, 'summary'> = {
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
    plan,
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
      total: itemCount(row),
      pending: itemCount(row),
      deleted: 0,
      skipped: 0,
      failed: 0,
    },
    planChanged,
    replanOf: row.replan_of,
    view,
    jobId: row.job_id,
    expiresAt: row.expires_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  }
  return { ...result, summary: summarize(result, row) }
}

function itemCount(row: DeletionRow | DeletionSummaryRow): number {
  return 'plan_item_count' in row ? row.plan_item_count : row.plan.items.length
}

function summarize(view: Omit<DeletionView, 'summary'>, row: DeletionRow | DeletionSummaryRow): string {
  const plan = row.plan
  const tags =
    'plan_tag_count' in row
      ? row.plan_tag_count
      : new Set(plan.items.flatMap((i) => i.vanishingTags.map((t) => `${i.repository}:${t}`))).size
  const waiting =
    view.state === 'awaiting_approval' ? `, needs ${view.approvals.missing} more approval(s)` : ''
  const done =
    view.progress.deleted + view.progress.skipped + view.progress.failed > 0
      ? `, ${view.progress.deleted} deleted, ${view.progress.skipped} skipped, ${view.progress.failed} failed of ${view.progress.total}`
      : ''
  const changed =
    view.planChanged > 0
      ? `; ${view.planChanged} item(s) not executed because the registry changed since approval (file the changed plan again with replan)`
      : ''
  return `Deletion ${view.id.slice(0, 8)} (${view.verb} in ${view.registry}) is ${view.state.replace('_', ' ')}: ${itemCount(row)} item(s), ${tags} tag(s), ~${formatBytes(plan.bytesFreed)}${waiting}${done}${changed}; requested by ${view.requester.person}`
}

export function toItemView(row: ItemRow): DeletionItemView {
  return {
    position: row.position,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    mediaType: row.media_type,
    action: row.action,
    vanishingTags: row.vanishing_tags,
    state: row.state,
    outcome: row.outcome,
    errorCode: row.error_code,
    error: row.error,
    attempts: row.attempts,
    restorable: row.restorable,
    restoreOutcome: row.restore_outcome,
    restoreNote: row.restore_note,
    verifiedAt: row.verified_at?.toISOString() ?? null,
    deleteIssuedAt: row.delete_issued_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
  }
}
