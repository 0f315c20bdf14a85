import { type AuditActor, auditActor } from '../audit/types.js'
import type { Principal } from '../auth/principal.js'

/**
 * Regent acting on its own: sweeps, schedules, the bridges that read a request or a run to stream
 * it. It may see everything; its audit events name `regent`.
 */
export const SYSTEM_PRINCIPAL: Principal = {
  subject: 'regent',
  teams: [],
  roles: ['admin'],
  channel: 'system',
}

/** The audit actor of Regent acting on its own. */
export function systemActor(requestId: string): AuditActor {
  return auditActor(SYSTEM_PRINCIPAL, { requestId })
}

/**
 * The worker acting for whoever asked for the work (a deletion's requester, a GC's requester):
 * both are on every event it writes.
 */
export function workerActor(onBehalfOf: string, teams: readonly string[], requestId: string): AuditActor {
  return auditActor(
    { subject: 'regent-worker', onBehalfOf, teams: [...teams], roles: [], channel: 'system' },
    { requestId },
  )
}
