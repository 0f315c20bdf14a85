import type { Queryable } from '../db/pool.js'
import { assertUuid } from '../lib/validate.js'
import type { RetentionRule } from './rules.js'

/** The statements of retention policies and runs, one function each (migration 011). */

export interface PolicyGuards {
  maxShare?: number
  maxCount?: number
}

export interface PolicyRow {
  id: string
  name: string
  team: string | null
  registry: string
  repositories: string[]
  rules: { rules: RetentionRule[]; default: 'keep' | 'expire' }
  guards: PolicyGuards
  schedule: string | null
  mode: 'propose' | 'auto'
  enabled: boolean
  version: number
  created_by: string
  updated_by: string
  created_at: Date
  updated_at: Date
  deleted_at: Date | null
}

export type PolicyFields = Pick<
  PolicyRow,
  'name' | 'team' | 'registry' | 'repositories' | 'rules' | 'guards' | 'schedule' | 'mode' | 'enabled'
>

export interface ExpiredArtifact {
  repository: string
  digest: string
  tags: string[]
}

export interface RunCounts {
  repositories: number
  artifacts: number
  tags: number
  expiredArtifacts: number
  expiredTags: number
  /** Artifacts the rules would expire that usage kept (absent in runs from before usage). */
  keptInUse?: number
  bytes: number
}

export interface GuardResult {
  tripped: boolean
  reasons: string[]
  limits: { maxShare: number; maxCount: number }
  /** Manifests kept because they are in use: the run holds them back, whatever its limits. */
  keptInUse?: number
}

export type RunState =
  | 'queued'
  | 'running'
  | 'previewed'
  | 'nothing'
  | 'guarded'
  | 'proposed'
  | 'executing'
  | 'failed'

export interface RunRow {
  id: string
  policy_id: string
  policy_version: number
  kind: 'preview' | 'run'
  trigger: 'schedule' | 'manual' | 'preview'
  slot: Date | null
  state: RunState
  requested_by: string
  override_guards: boolean
  counts: RunCounts | null
  expired: ExpiredArtifact[] | null
  guard: GuardResult | null
  deletion_id: string | null
  job_id: string | null
  error: string | null
  created_at: Date
  finished_at: Date | null
}

const POLICY_COLUMNS = 'name, team, registry, repositories, rules, guards, schedule, mode, enabled'

function policyValues(fields: PolicyFields): unknown[] {
  return [
    fields.name,
    fields.team,
    fields.registry,
    fields.repositories,
    JSON.stringify(fields.rules),
    JSON.stringify(fields.guards),
    fields.schedule,
    fields.mode,
    fields.enabled,
  ]
}

/** undefined when the name is taken by a live policy. */
export async function insertPolicy(
  db: Queryable,
  fields: PolicyFields,
  by: string,
): Promise<PolicyRow | undefined> {
  const { rows } = await db.query<PolicyRow>(
    `INSERT INTO retention_policies (${POLICY_COLUMNS}, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
     ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING
     RETURNING *`,
    [...policyValues(fields), by],
  )
  return rows[0]
}

export async function updatePolicy(
  db: Queryable,
  id: string,
  fields: PolicyFields,
  by: string,
): Promise<PolicyRow | undefined> {
  const { rows } = await db.query<PolicyRow>(
    `UPDATE retention_policies
        SET (${POLICY_COLUMNS}) = ($2, $3, $4, $5, $6, $7, $8, $9, $10),
            updated_by = $11, updated_at = now(), version = version + 1
      WHERE id = $1 AND deleted_at IS NULL
      RETURNING *`,
    [id, ...policyValues(fields), by],
  )
  return rows[0]
}

export async function deletePolicy(db: Queryable, id: string, by: string): Promise<PolicyRow | undefined> {
  const { rows } = await db.query<PolicyRow>(
    `UPDATE retention_policies SET deleted_at = now(), updated_by = $2, updated_at = now(), enabled = false
      WHERE id = $1 AND deleted_at IS NULL RETURNING *`,
    [id, by],
  )
  return rows[0]
}

export async function getPolicy(
  db: Queryable,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<PolicyRow | undefined> {
  assertUuid(id)
  const { rows } = await db.query<PolicyRow>(
    `SELECT * FROM retention_policies WHERE id = $1 AND deleted_at IS NULL${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  )
  return rows[0]
}

export async function listPolicies(db: Queryable, filters: { team?: string; registry?: string } = {}) {
  const { rows } = await db.query<PolicyRow>(
    `SELECT * FROM retention_policies
      WHERE deleted_at IS NULL
        AND ($1::text IS NULL OR team = $1)
        AND ($2::text IS NULL OR registry = $2)
      ORDER BY name`,
    [filters.team ?? null, filters.registry ?? null],
  )
  return rows
}

/** Enabled policies with a schedule: what the scheduler looks at each minute. */
export async function scheduledPolicies(db: Queryable): Promise<PolicyRow[]> {
  const { rows } = await db.query<PolicyRow>(
    `SELECT * FROM retention_policies WHERE deleted_at IS NULL AND enabled AND schedule IS NOT NULL`,
  )
  return rows
}

export interface NewRun {
  policyId: string
  policyVersion: number
  kind: 'preview' | 'run'
  trigger: RunRow['trigger']
  state: RunState
  requestedBy: string
  slot?: Date
  overrideGuards?: boolean
}

/** undefined when a run for this (policy, slot) exists: another replica fired the slot first. */
export async function insertRun(db: Queryable, run: NewRun): Promise<RunRow | undefined> {
  const { rows } = await db.query<RunRow>(
    `INSERT INTO retention_runs (policy_id, policy_version, kind, trigger, slot, state, requested_by, override_guards)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (policy_id, slot) DO NOTHING
     RETURNING *`,
    [
      run.policyId,
      run.policyVersion,
      run.kind,
      run.trigger,
      run.slot ?? null,
      run.state,
      run.requestedBy,
      run.overrideGuards ?? false,
    ],
  )
  return rows[0]
}

export interface RunOutcome {
  state: RunState
  counts?: RunCounts | null
  expired?: ExpiredArtifact[] | null
  guard?: GuardResult | null
  deletionId?: string | null
  jobId?: string | null
  error?: string | null
  finished?: boolean
}

export async function setRunOutcome(db: Queryable, id: string, outcome: RunOutcome): Promise<RunRow> {
  const { rows } = await db.query<RunRow>(
    `UPDATE retention_runs
        SET state = $2,
            counts = COALESCE($3, counts),
            expired = COALESCE($4, expired),
            guard = COALESCE($5, guard),
            deletion_id = COALESCE($6, deletion_id),
            job_id = COALESCE($7, job_id),
            error = $8,
            finished_at = CASE WHEN $9 THEN now() ELSE finished_at END
      WHERE id = $1
      RETURNING *`,
    [
      id,
      outcome.state,
      outcome.counts ? JSON.stringify(outcome.counts) : null,
      outcome.expired ? JSON.stringify(outcome.expired) : null,
      outcome.guard ? JSON.stringify(outcome.guard) : null,
      outcome.deletionId ?? null,
      outcome.jobId ?? null,
      outcome.error ?? null,
      outcome.finished ?? false,
    ],
  )
  return rows[0] as RunRow
}

export async function getRun(
  db: Queryable,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<RunRow | undefined> {
  assertUuid(id)
  const { rows } = await db.query<RunRow>(
    `SELECT * FROM retention_runs WHERE id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  )
  return rows[0]
}

export async function listRuns(db: Queryable, policyId: string, limit: number): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT * FROM retention_runs WHERE policy_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [policyId, limit],
  )
  return rows
}

/** The latest evaluation (preview or run) that recorded what it matched: what a diff compares with. */
export async function previousEvaluation(
  db: Queryable,
  policyId: string,
  except?: string,
): Promise<RunRow | undefined> {
  const { rows } = await db.query<RunRow>(
    `SELECT * FROM retention_runs
      WHERE policy_id = $1 AND expired IS NOT NULL AND ($2::uuid IS NULL OR id <> $2)
      ORDER BY created_at DESC, id DESC LIMIT 1`,
    [policyId, except ?? null],
  )
  return rows[0]
}

/** true for the first caller only: a warning goes out once per (policy, slot). */
export async function claimWarning(db: Queryable, policyId: string, slot: Date): Promise<boolean> {
  const { rowCount } = await db.query(
    'INSERT INTO retention_warnings (policy_id, slot) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [policyId, slot],
  )
  return rowCount === 1
}
