import type { Principal, RequestContext } from '../auth/principal.js'

/**
 * Bumped when the set of hashed fields or their encoding changes. Stored on every row, so a
 * verifier can hash old rows the way they were written.
 */
export const AUDIT_SCHEMA_VERSION = 1

/** The first event's `prev_hash`: the chain starts from 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64)

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export type JsonObject = { [key: string]: JsonValue }

/** Who did it, from where: filled from the request's principal by `auditActor`. */
export interface AuditActor {
  actorSubject: string
  onBehalfOf: string | null
  actorTeams: string[]
  channel: Principal['channel']
  sourceIp: string | null
  userAgent: string | null
  requestId: string | null
}

/** What an audited state change writes: the actor plus what happened to which target. */
export interface AuditInput extends AuditActor {
  /** Dotted verb, e.g. `deletion.requested`, `deletion.approved`, `manifest.deleted`. */
  action: string
  /** How it ended, e.g. `succeeded`, `failed`, `refused`, `skipped`. */
  outcome: string
  registry?: string | null
  repository?: string | null
  tag?: string | null
  digest?: string | null
  deletionId?: string | null
  /** Anything else worth keeping (registry status and error code, job id, attempt…): a JSON object. */
  details?: Record<string, unknown>
}

/** A stored audit event, as read back from Postgres. */
export interface AuditEvent {
  /** Storage id (bigint, as a string); `seq` is the chain position. */
  id: string
  seq: number
  /** ISO 8601 UTC with microseconds, exactly as Postgres stores it: `2025-01-02T03:04:05.123456Z`. */
  occurredAt: string
  action: string
  actorSubject: string
  onBehalfOf: string | null
  actorTeams: string[]
  channel: string
  sourceIp: string | null
  userAgent: string | null
  requestId: string | null
  registry: string | null
  repository: string | null
  tag: string | null
  digest: string | null
  deletionId: string | null
  outcome: string
  details: JsonObject
  prevHash: string
  hash: string
  schemaVersion: number
}

/** The actor fields of an audit event: the caller, the person it acts for, and the request. */
export function auditActor(principal: Principal, context: RequestContext): AuditActor {
  return {
    actorSubject: principal.subject,
    onBehalfOf: principal.onBehalfOf ?? null,
    actorTeams: [...principal.teams],
    channel: principal.channel,
    sourceIp: context.sourceIp ?? null,
    userAgent: context.userAgent ?? null,
    requestId: context.requestId,
  }
}
