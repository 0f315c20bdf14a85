import type { AuditEvent, JsonObject } from './types.js'

/**
 * How audit rows are read, in one place for the writer, the verifier and the queries. The
 * timestamp is formatted by Postgres itself, with all six fractional digits: a JS Date would drop
 * the microseconds and the hash could no longer be recomputed from the row.
 */
export const OCCURRED_AT_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`

/**
 * The select list. It renames `seq` to text, so an `ORDER BY seq` next to it would sort by the
 * text: order by the qualified column (`audit_events.seq`).
 */
export function eventColumns(alias = 'audit_events'): string {
  const a = alias
  return `${a}.id::text AS id, ${a}.seq::text AS seq,
    to_char(${a}.occurred_at AT TIME ZONE 'UTC', ${OCCURRED_AT_FORMAT}) AS occurred_at,
    ${a}.action, ${a}.actor_subject, ${a}.on_behalf_of, ${a}.actor_teams, ${a}.channel,
    ${a}.source_ip, ${a}.user_agent, ${a}.request_id, ${a}.registry, ${a}.repository, ${a}.tag,
    ${a}.digest, ${a}.deletion_id::text AS deletion_id, ${a}.outcome, ${a}.details,
    ${a}.prev_hash, ${a}.hash, ${a}.schema_version`
}

export interface AuditEventRow {
  id: string
  seq: string
  occurred_at: string
  action: string
  actor_subject: string
  on_behalf_of: string | null
  actor_teams: string[]
  channel: string
  source_ip: string | null
  user_agent: string | null
  request_id: string | null
  registry: string | null
  repository: string | null
  tag: string | null
  digest: string | null
  deletion_id: string | null
  outcome: string
  details: JsonObject
  prev_hash: string
  hash: string
  schema_version: number
}

export function rowToEvent(row: AuditEventRow): AuditEvent {
  return {
    id: row.id,
    seq: Number(row.seq),
    occurredAt: row.occurred_at,
    action: row.action,
    actorSubject: row.actor_subject,
    onBehalfOf: row.on_behalf_of,
    actorTeams: row.actor_teams,
    channel: row.channel,
    sourceIp: row.source_ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    registry: row.registry,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    deletionId: row.deletion_id,
    outcome: row.outcome,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
    schemaVersion: row.schema_version,
  }
}
