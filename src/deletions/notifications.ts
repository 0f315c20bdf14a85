import { jsonObject, type NotificationEvent } from '../notifications/index.js'
import type { DeletionView } from './service.js'

export type DeletionNotificationType =
  | 'deletion.requested'
  | 'deletion.approved'
  | 'deletion.rejected'
  | 'deletion.executed'
  | 'deletion.partially_failed'
  | 'deletion.failed'
  | 'deletion.restored'

/**
 * A deletion request as a notification. `deletion.requested` is addressed to the approvers, so
 * every event carries the approval requirement, what is still missing and the owning teams; the
 * full plan stays behind GET /v1/deletions/{id} (an event names the request, not every item).
 */
export function deletionEvent(
  type: DeletionNotificationType,
  view: DeletionView,
  owningTeams: string[],
): NotificationEvent {
  const vanishingTags = new Set(
    view.plan.items.flatMap((i) => i.vanishingTags.map((tag) => `${i.repository}:${tag}`)),
  )
  return {
    type,
    subject: view.id,
    registry: view.registry,
    teams: owningTeams,
    summary: view.summary,
    data: jsonObject({
      deletionId: view.id,
      state: view.state,
      verb: view.verb,
      reason: view.reason,
      ticket: view.ticket,
      requester: view.requester,
      owningTeams,
      repositories: view.plan.repositories.map((r) => r.repository),
      items: view.plan.items.length,
      vanishingTags: vanishingTags.size,
      bytesFreed: view.plan.bytesFreed,
      planHash: view.planHash,
      approvals: {
        required: view.approvals.required,
        missing: view.approvals.missing,
        missingAdmins: view.approvals.missingAdmins,
      },
      progress: view.progress,
      planChanged: view.planChanged,
      // What approvers most need to know: items something still runs or names.
      inUse: view.plan.items
        .filter((i) => i.inUse)
        .map((i) => ({
          repository: i.repository,
          tag: i.tag,
          digest: i.digest,
          reason: i.inUse!.reason,
          policy: i.inUse!.policy,
        })),
      expiresAt: view.expiresAt,
    }),
  }
}
