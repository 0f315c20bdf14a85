import { createHash } from 'node:crypto'
import type { AuditEvent } from './types.js'

/** The fields an event's hash covers: everything but the storage id and the hashes themselves. */
export type HashedFields = Omit<AuditEvent, 'id' | 'prevHash' | 'hash'>

/**
 * `hash = sha256(prev_hash + canonical(fields))`, hex. The canonical form is JSON with sorted keys
 * over a fixed list of snake_case fields (one per column), so any process can recompute it from
 * the stored row: the timestamp is Postgres' own text (microseconds, UTC) and `details` is the
 * value jsonb gives back, whose key order and spacing the sorted encoding makes irrelevant.
 */
export function computeEventHash(prevHash: string, event: HashedFields): string {
  return createHash('sha256')
    .update(prevHash + canonicalEventEncoding(event))
    .digest('hex')
}

export function canonicalEventEncoding(event: HashedFields): string {
  if (event.schemaVersion !== 1) {
    throw new Error(`audit event schema_version ${event.schemaVersion} is unknown to this build`)
  }
  return canonicalJson(eventColumnsOf(event))
}

/** The hashed fields under their column names: what the hash covers, and what the writer inserts. */
export function eventColumnsOf(event: HashedFields) {
  return {
    seq: event.seq,
    occurred_at: event.occurredAt,
    action: event.action,
    actor_subject: event.actorSubject,
    on_behalf_of: event.onBehalfOf,
    actor_teams: event.actorTeams,
    channel: event.channel,
    source_ip: event.sourceIp,
    user_agent: event.userAgent,
    request_id: event.requestId,
    registry: event.registry,
    repository: event.repository,
    tag: event.tag,
    digest: event.digest,
    deletion_id: event.deletionId,
    outcome: event.outcome,
    details: event.details,
    schema_version: event.schemaVersion,
  }
}

/** JSON with object keys sorted (by UTF-16 code unit) at every depth; no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot encode ${value} canonically`)
      return JSON.stringify(value)
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`
      const record = value as Record<string, unknown>
      const members = Object.keys(record)
        .filter((key) => record[key] !== undefined)
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`)
      return `{${members.join(',')}}`
    }
    default:
      throw new TypeError(`cannot encode a ${typeof value} canonically`)
  }
}
