import type pg from 'pg'
import { withTransaction } from '../db/transaction.js'
import { computeEventHash, eventColumnsOf, type HashedFields } from './hash.js'
import { type AuditEventRow, eventColumns, OCCURRED_AT_FORMAT, rowToEvent } from './rows.js'
import {
  AUDIT_SCHEMA_VERSION,
  type AuditActor,
  type AuditEvent,
  type AuditInput,
  type JsonObject,
} from './types.js'

/**
 * Locks the chain head for the rest of the caller's transaction and reads the time after the lock
 * is granted, so `occurred_at` follows `seq` order. MATERIALIZED keeps the lock in its own plan
 * node: the outer SELECT (and clock_timestamp()) only runs once the row lock is held.
 */
const LOCK_CHAIN_HEAD = `
  WITH head AS MATERIALIZED (
    SELECT last_seq, last_hash FROM audit_chain_head WHERE id FOR UPDATE
  )
  SELECT head.last_seq::text AS last_seq, head.last_hash,
         to_char(clock_timestamp() AT TIME ZONE 'UTC', ${OCCURRED_AT_FORMAT}) AS occurred_at
  FROM head`

/** Inserts the event and advances the head in one statement; both belong to the caller's transaction. */
const INSERT_EVENT = `
  WITH inserted AS (
    INSERT INTO audit_events (
      seq, occurred_at, action, actor_subject, on_behalf_of, actor_teams, channel, source_ip,
      user_agent, request_id, registry, repository, tag, digest, deletion_id, outcome, details,
      prev_hash, hash, schema_version)
    VALUES ($1::bigint, $2::timestamptz, $3::text, $4::text, $5::text, $6::text[], $7::text, $8::text,
      $9::text, $10::text, $11::text, $12::text, $13::text, $14::text, $15::uuid, $16::text, $17::jsonb,
      $18::text, $19::text, $20::integer)
    RETURNING *
  ), advanced AS (
    UPDATE audit_chain_head h SET last_seq = i.seq, last_hash = i.hash
    FROM inserted i
    WHERE h.id AND h.last_seq = i.seq - 1
    RETURNING h.last_seq
  )
  SELECT ${eventColumns('i')}, (SELECT count(*) FROM advanced)::int AS advanced
  FROM inserted i`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Appends one event to the audit chain. Call it inside the transaction that makes the state change
 * it records (`withTransaction`), so both commit or neither does; if this throws, the caller's
 * transaction must roll back and nothing may be sent to a registry.
 *
 * Writers are serialised on the chain head row until the caller's transaction ends: call this late
 * in the transaction, never before a slow step.
 */
export async function appendAuditEvent(client: pg.PoolClient, input: AuditInput): Promise<AuditEvent> {
  const fields = normaliseInput(input)
  const head = await client.query<{ last_seq: string; last_hash: string; occurred_at: string }>(
    LOCK_CHAIN_HEAD,
  )
  const current = head.rows[0]
  if (!current) throw new Error('audit_chain_head has no row: migration 002 has not run')

  const event: HashedFields = {
    ...fields,
    seq: Number(current.last_seq) + 1,
    occurredAt: current.occurred_at,
    schemaVersion: AUDIT_SCHEMA_VERSION,
  }
  const hash = computeEventHash(current.last_hash, event)
  const { rows } = await client.query<AuditEventRow & { advanced: number }>(INSERT_EVENT, [
    event.seq,
    event.occurredAt,
    event.action,
    event.actorSubject,
    event.onBehalfOf,
    event.actorTeams,
    event.channel,
    event.sourceIp,
    event.userAgent,
    event.requestId,
    event.registry,
    event.repository,
    event.tag,
    event.digest,
    event.deletionId,
    event.outcome,
    JSON.stringify(event.details),
    current.last_hash,
    hash,
    event.schemaVersion,
  ])
  const row = rows[0]
  if (row?.advanced !== 1) throw new Error('the audit chain head moved while it was locked')
  const stored = rowToEvent(row)
  // Fail closed: a row whose hash cannot be recomputed from what Postgres stored (a value jsonb or
  // a column normalised differently) would read as tampering later. Refuse it now, in the
  // caller's transaction, instead.
  if (computeEventHash(stored.prevHash, stored) !== stored.hash) {
    throw new Error(`audit event seq ${stored.seq} would not verify as stored; refusing to write it`)
  }
  return stored
}

/** Inserts many events after one chain-head lock; the rows come from one JSON array. */
const INSERT_EVENTS = `
  INSERT INTO audit_events (
    seq, occurred_at, action, actor_subject, on_behalf_of, actor_teams, channel, source_ip,
    user_agent, request_id, registry, repository, tag, digest, deletion_id, outcome, details,
    prev_hash, hash, schema_version)
  SELECT e.seq, e.occurred_at, e.action, e.actor_subject, e.on_behalf_of,
    ARRAY(SELECT jsonb_array_elements_text(e.actor_teams)), e.channel, e.source_ip, e.user_agent,
    e.request_id, e.registry, e.repository, e.tag, e.digest, e.deletion_id, e.outcome, e.details,
    e.prev_hash, e.hash, e.schema_version
  FROM jsonb_to_recordset($1::jsonb) AS e(
    seq bigint, occurred_at timestamptz, action text, actor_subject text, on_behalf_of text,
    actor_teams jsonb, channel text, source_ip text, user_agent text, request_id text, registry text,
    repository text, tag text, digest text, deletion_id uuid, outcome text, details jsonb,
    prev_hash text, hash text, schema_version integer)
  RETURNING ${eventColumns('audit_events')}`

/**
 * Moves the head over the events just inserted, in a statement of its own: the head's trigger
 * checks that every event it passes over exists.
 */
const ADVANCE_HEAD = `
  UPDATE audit_chain_head SET last_seq = $1::bigint, last_hash = $2::text
  WHERE id AND last_seq = $3::bigint`

/**
 * Appends several events in one round trip, under one lock of the chain head: what a wave of
 * deletion items records. Same guarantees as `appendAuditEvent`: part of the caller's
 * transaction, and every row is re-hashed as stored before the transaction may commit.
 */
export async function appendAuditEvents(client: pg.PoolClient, inputs: AuditInput[]): Promise<AuditEvent[]> {
  if (inputs.length === 0) return []
  if (inputs.length === 1) return [await appendAuditEvent(client, inputs[0]!)]
  const fields = inputs.map(normaliseInput)
  const head = await client.query<{ last_seq: string; last_hash: string; occurred_at: string }>(
    LOCK_CHAIN_HEAD,
  )
  const current = head.rows[0]
  if (!current) throw new Error('audit_chain_head has no row: migration 002 has not run')
  const first = Number(current.last_seq)
  let prevHash = current.last_hash
  const rows = fields.map((input, i) => {
    const event: HashedFields = {
      ...input,
      seq: first + i + 1,
      occurredAt: current.occurred_at,
      schemaVersion: AUDIT_SCHEMA_VERSION,
    }
    const hash = computeEventHash(prevHash, event)
    const row = { ...eventColumnsOf(event), prev_hash: prevHash, hash }
    prevHash = hash
    return row
  })
  const { rows: stored } = await client.query<AuditEventRow>(INSERT_EVENTS, [JSON.stringify(rows)])
  const advanced = await client.query(ADVANCE_HEAD, [first + rows.length, prevHash, first])
  if (stored.length !== rows.length || advanced.rowCount !== 1) {
    throw new Error('the audit chain head moved while it was locked')
  }
  return stored
    .sort((a, b) => Number(a.seq) - Number(b.seq))
    .map((row) => {
      const event = rowToEvent(row)
      if (computeEventHash(event.prevHash, event) !== event.hash) {
        throw new Error(`audit event seq ${event.seq} would not verify as stored; refusing to write it`)
      }
      return event
    })
}

type NormalisedInput = Omit<HashedFields, 'seq' | 'occurredAt' | 'schemaVersion'>

function normaliseInput(input: AuditInput): NormalisedInput {
  for (const key of ['action', 'outcome', 'actorSubject', 'channel'] as const) {
    if (typeof input[key] !== 'string' || input[key] === '') {
      throw new TypeError(`audit event ${key} must be a non-empty string`)
    }
  }
  if (input.deletionId != null && !UUID.test(input.deletionId)) {
    throw new TypeError(`audit event deletionId is not a UUID: ${input.deletionId}`)
  }
  return {
    action: input.action,
    outcome: input.outcome,
    actorSubject: input.actorSubject,
    onBehalfOf: input.onBehalfOf ?? null,
    actorTeams: [...input.actorTeams],
    channel: input.channel,
    sourceIp: input.sourceIp ?? null,
    userAgent: input.userAgent ?? null,
    requestId: input.requestId ?? null,
    registry: input.registry ?? null,
    repository: input.repository ?? null,
    tag: input.tag ?? null,
    digest: input.digest ?? null,
    // Postgres prints uuids in lower case; hash what it will give back.
    deletionId: input.deletionId?.toLowerCase() ?? null,
    details: normaliseDetails(input.details),
  }
}

/** The JSON value jsonb will store: Dates become strings, undefined members vanish, and so on. */
function normaliseDetails(details: Record<string, unknown> | undefined): JsonObject {
  if (details === undefined) return {}
  const value: unknown = JSON.parse(JSON.stringify(details))
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError('audit event details must be a JSON object')
  }
  return value as JsonObject
}

/**
 * An event with no state change to ride along with (a refusal, a read worth recording): committed
 * in a transaction of its own, before the caller answers.
 */
export async function auditAlone(
  pool: pg.Pool,
  actor: AuditActor,
  event: Omit<AuditInput, keyof AuditActor>,
): Promise<void> {
  await withTransaction(pool, (client) => appendAuditEvent(client, { ...actor, ...event }))
}
