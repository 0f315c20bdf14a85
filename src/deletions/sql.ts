import type { Queryable } from '../db/pool.js'
import { CREATED_KEY, type Keyset, type KeysetRow } from '../lib/paging.js'
import { assertUuid } from '../lib/validate.js'
import type { Plan, Target, Verb } from './plan.js'
import type { DeletionState } from './state-machine.js'

/** SQL of deletion requests and approvals: one function per statement, parameterised. */

export interface DeletionRow {
  id: string
  registry: string
  verb: Verb
  targets: Target[]
  reason: string
  ticket: string | null
  requester_subject: string
  requester_on_behalf_of: string | null
  requester_person: string
  requester_teams: string[]
  requester_channel: string
  state: DeletionState
  plan: Plan
  plan_hash: string
  approval_requirement: Plan['approvals']
  owning_teams: string[]
  idempotency_key: string | null
  request_fingerprint: string | null
  expires_at: Date | null
  job_id: string | null
  executed_at: Date | null
  replan_of: string | null
  created_at: Date
  updated_at: Date
}

export interface ApprovalRow {
  id: string
  deletion_id: string
  approver_subject: string
  approver_on_behalf_of: string | null
  approver_person: string
  approved_as: 'admin' | 'owning-team-approver'
  decision: 'approve' | 'reject'
  comment: string | null
  plan_hash: string
  created_at: Date
}

export type NewDeletion = Omit<DeletionRow, 'id' | 'created_at' | 'updated_at' | 'job_id' | 'executed_at'>

/** Inserts unless the caller's Idempotency-Key is taken; then returns undefined. */
export async function insertDeletion(db: Queryable, row: NewDeletion): Promise<DeletionRow | undefined> {
  const { rows } = await db.query<DeletionRow>(
    `INSERT INTO deletion_requests (registry, verb, targets, reason, ticket, requester_subject, requester_on_behalf_of,
       requester_person, requester_teams, requester_channel, state, plan, plan_hash, approval_requirement, owning_teams,
       idempotency_key, request_fingerprint, expires_at, replan_of)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9::text[], $10, $11, $12::jsonb, $13, $14::jsonb, $15::text[], $16, $17, $18,
       $19::uuid)
     ON CONFLICT (requester_subject, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING *`,
    [
      row.registry,
      row.verb,
      JSON.stringify(row.targets),
      row.reason,
      row.ticket,
      row.requester_subject,
      row.requester_on_behalf_of,
      row.requester_person,
      row.requester_teams,
      row.requester_channel,
      row.state,
      JSON.stringify(row.plan),
      row.plan_hash,
      JSON.stringify(row.approval_requirement),
      row.owning_teams,
      row.idempotency_key,
      row.request_fingerprint,
      row.expires_at,
      row.replan_of,
    ],
  )
  return rows[0]
}

export async function findByIdempotencyKey(
  db: Queryable,
  subject: string,
  key: string,
): Promise<DeletionRow | undefined> {
  const { rows } = await db.query<DeletionRow>(
    'SELECT * FROM deletion_requests WHERE requester_subject = $1 AND idempotency_key = $2',
    [subject, key],
  )
  return rows[0]
}

export async function getDeletion(
  db: Queryable,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<DeletionRow | undefined> {
  assertUuid(id)
  const { rows } = await db.query<DeletionRow>(
    `SELECT * FROM deletion_requests WHERE id = $1::uuid${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  )
  return rows[0]
}

/** A request whose plan leaves its items out, with their counts: what a poller needs. */
export interface DeletionSummaryRow extends DeletionRow {
  plan_item_count: number
  plan_tag_count: number
}

/**
 * The request without its plan's items and kept manifests (counted in Postgres instead), so polling
 * a large request neither ships nor parses its whole plan.
 */
export async function getDeletionSummary(db: Queryable, id: string): Promise<DeletionSummaryRow | undefined> {
  const { rows } = await db.query<DeletionSummaryRow>(
    `SELECT id, registry, verb, targets, reason, ticket, requester_subject, requester_on_behalf_of, requester_person,
            requester_teams, requester_channel, state, plan_hash, approval_requirement, owning_teams, idempotency_key,
            request_fingerprint, expires_at, job_id, executed_at, replan_of, created_at, updated_at,
            (plan - 'items' - 'kept') || '{"items": [], "kept": []}'::jsonb AS plan,
            jsonb_array_length(plan->'items') AS plan_item_count,
            (SELECT count(DISTINCT (i->>'repository') || ':' || t)::int
               FROM jsonb_array_elements(plan->'items') i, jsonb_array_elements_text(i->'vanishingTags') t
            ) AS plan_tag_count
     FROM deletion_requests WHERE id = $1::uuid`,
    [id],
  )
  return rows[0]
}

/** Moves a request from `from` to `to`; undefined when it was no longer in `from`. */
export async function setDeletionState(
  db: Queryable,
  id: string,
  from: DeletionState,
  to: DeletionState,
): Promise<DeletionRow | undefined> {
  const { rows } = await db.query<DeletionRow>(
    `UPDATE deletion_requests SET state = $3, updated_at = now()
     WHERE id = $1::uuid AND state = $2 RETURNING *`,
    [id, from, to],
  )
  return rows[0]
}

export interface DeletionFilters {
  state?: DeletionState
  registry?: string
  requester?: string
}

/**
 * Newest first, keyset by (created_at, id). `visibleTo` limits a non-admin to requests of their
 * own teams' repositories and their own requests.
 */
export async function listDeletions(
  db: Queryable,
  filters: DeletionFilters,
  visibleTo: { person: string; teams: string[] } | null,
  page: { limit: number; after?: Keyset },
): Promise<(DeletionRow & KeysetRow)[]> {
  const { rows } = await db.query<DeletionRow & KeysetRow>(
    `SELECT *, ${CREATED_KEY} FROM deletion_requests
     WHERE ($1::text IS NULL OR state = $1)
       AND ($2::text IS NULL OR registry = $2)
       AND ($3::text IS NULL OR requester_person = $3 OR requester_subject = $3)
       AND ($4::text IS NULL OR requester_person = $4 OR owning_teams && $5::text[])
       AND ($6::timestamptz IS NULL OR (created_at, id) < ($6::timestamptz, $7::uuid))
     ORDER BY created_at DESC, id DESC
     LIMIT $8`,
    [
      filters.state ?? null,
      filters.registry ?? null,
      filters.requester ?? null,
      visibleTo?.person ?? null,
      visibleTo?.teams ?? [],
      page.after?.createdAt ?? null,
      page.after?.id ?? null,
      page.limit,
    ],
  )
  return rows
}

export async function insertApproval(
  db: Queryable,
  row: Omit<ApprovalRow, 'id' | 'created_at'>,
): Promise<ApprovalRow | undefined> {
  const { rows } = await db.query<ApprovalRow>(
    `INSERT INTO deletion_approvals (deletion_id, approver_subject, approver_on_behalf_of, approver_person, approved_as,
       decision, comment, plan_hash)
     VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (deletion_id, approver_person) DO NOTHING
     RETURNING *`,
    [
      row.deletion_id,
      row.approver_subject,
      row.approver_on_behalf_of,
      row.approver_person,
      row.approved_as,
      row.decision,
      row.comment,
      row.plan_hash,
    ],
  )
  return rows[0]
}

export async function listApprovals(db: Queryable, deletionIds: string[]): Promise<ApprovalRow[]> {
  if (deletionIds.length === 0) return []
  const { rows } = await db.query<ApprovalRow>(
    'SELECT * FROM deletion_approvals WHERE deletion_id = ANY($1::uuid[]) ORDER BY id',
    [deletionIds],
  )
  return rows
}

/** Requests whose approval window closed; locked, so concurrent sweepers expire each once. */
export async function expireOverdue(db: Queryable): Promise<DeletionRow[]> {
  const { rows } = await db.query<DeletionRow>(
    `UPDATE deletion_requests SET state = 'expired', updated_at = now()
     WHERE id IN (
       SELECT id FROM deletion_requests
       WHERE state = 'awaiting_approval' AND expires_at <= now()
       FOR UPDATE SKIP LOCKED)
     RETURNING *`,
  )
  return rows
}
