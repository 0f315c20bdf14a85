import { errors } from '../errors.js'

/**
 * A deletion request's life, explicit: every state change goes through `assertTransition`, and a
 * change not listed here is a 409 `REGENT_ILLEGAL_TRANSITION`, never a silent overwrite.
 */
export const DELETION_STATES = [
  'planned',
  'awaiting_approval',
  'approved',
  'queued',
  'running',
  'succeeded',
  'partially_failed',
  'failed',
  'rejected',
  'cancelled',
  'expired',
  'restored',
] as const
export type DeletionState = (typeof DELETION_STATES)[number]

const TRANSITIONS: Record<DeletionState, readonly DeletionState[]> = {
  planned: ['awaiting_approval', 'approved', 'cancelled'],
  awaiting_approval: ['approved', 'rejected', 'cancelled', 'expired'],
  approved: ['queued', 'cancelled'],
  queued: ['running', 'cancelled'],
  running: ['succeeded', 'partially_failed', 'failed', 'queued'],
  succeeded: ['restored'],
  partially_failed: ['queued', 'restored'],
  failed: ['queued'],
  rejected: [],
  cancelled: [],
  expired: [],
  restored: [],
}

export function canTransition(from: DeletionState, to: DeletionState): boolean {
  return TRANSITIONS[from].includes(to)
}

export function assertTransition(from: DeletionState, to: DeletionState): void {
  if (!canTransition(from, to)) throw new errors.ILLEGAL_TRANSITION(from, to)
}

/** States a request can no longer leave by itself. */
export function isFinal(state: DeletionState): boolean {
  return TRANSITIONS[state].length === 0
}
