import { formatBytes, plural } from '../http/format.js'
import type { Evaluation, EvaluationDiff } from './evaluate.js'
import type { RetentionRule } from './rules.js'
import type { GuardResult, PolicyFields, PolicyGuards, PolicyRow, RunRow } from './sql.js'

/** A policy as REST and GraphQL show it. */
export interface PolicyView {
  id: string
  name: string
  team: string | null
  registry: string
  repositories: string[]
  rules: RetentionRule[]
  default: 'keep' | 'expire'
  schedule: string | null
  mode: 'propose' | 'auto'
  enabled: boolean
  guards: PolicyGuards
  version: number
  createdBy: string
  updatedBy: string
  createdAt: string
  updatedAt: string
}

/** An evaluation as a preview shows it: every verdict with its reason, what it frees, the guard. */
export interface PreviewView {
  id: string | null
  evaluatedAt: string
  counts: Evaluation['counts']
  verdicts: {
    repository: string
    tag: string | null
    digest: string
    verdict: 'keep' | 'expire'
    decidedBy: string
    fact: string
    timeSources: { push: string; pull: string }
  }[]
  repositories: {
    repository: string
    totalTags: number
    expiredTags: number
    bytes: number
    error?: string
  }[]
  guard: GuardResult
  diff: EvaluationDiff
  summary: string
}

/** A run (or a stored preview) as REST and GraphQL show it. */
export interface RunView {
  id: string
  policyId: string
  policyVersion: number
  trigger: string
  slot: string | null
  state: string
  requestedBy: string
  overrideGuards: boolean
  counts: RunRow['counts']
  expired: RunRow['expired']
  guard: GuardResult | null
  deletionId: string | null
  jobId: string | null
  error: string | null
  createdAt: string
  finishedAt: string | null
  summary: string
}

export function toPolicyView(row: PolicyRow): PolicyView {
  return {
    id: row.id,
    name: row.name,
    team: row.team,
    registry: row.registry,
    repositories: row.repositories,
    rules: row.rules.rules,
    default: row.rules.default,
    schedule: row.schedule,
    mode: row.mode,
    enabled: row.enabled,
    guards: row.guards,
    version: row.version,
    createdBy: row.created_by,
    updatedBy: row.updated_by,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  }
}

export function toPreviewView(
  id: string | null,
  policy: PolicyFields,
  evaluation: Evaluation,
  guard: GuardResult,
  diff: EvaluationDiff,
): PreviewView {
  const verdicts = evaluation.repositories.flatMap((repo) =>
    repo.verdicts.flatMap((v) =>
      (v.tags.length > 0 ? v.tags : [null]).map((tag) => ({
        repository: repo.repository,
        tag,
        digest: v.digest,
        verdict: v.decision,
        decidedBy: v.decidedBy,
        fact: v.fact,
        timeSources: v.timeSources,
      })),
    ),
  )
  const { counts } = evaluation
  const touched = evaluation.repositories.filter((r) =>
    r.verdicts.some((v) => v.decision === 'expire'),
  ).length
  const summary =
    `Policy ${policy.name} would delete ${plural(counts.expiredArtifacts, 'manifest')} (${plural(counts.expiredTags, 'tag')}) ` +
    `in ${touched} of ${plural(counts.repositories, 'repository', 'repositories')}, freeing ${formatBytes(counts.bytes)}` +
    (counts.keptInUse ? `; ${plural(counts.keptInUse, 'manifest')} kept because in use` : '') +
    (guard.tripped ? `; a run would stop for an admin: ${guard.reasons.join('; ')}` : '') +
    (diff.against
      ? ` (${diff.newlyExpired.length} newly, ${diff.noLongerExpired.length} no longer since ${diff.against.kind} ${diff.against.id})`
      : '')
  return {
    id,
    evaluatedAt: evaluation.evaluatedAt.toISOString(),
    counts,
    verdicts,
    repositories: evaluation.repositories.map(({ verdicts: _v, ...r }) => r),
    guard,
    diff,
    summary,
  }
}

export function toRunView(row: RunRow): RunView {
  return {
    id: row.id,
    policyId: row.policy_id,
    policyVersion: row.policy_version,
    trigger: row.trigger,
    slot: row.slot?.toISOString() ?? null,
    state: row.state,
    requestedBy: row.requested_by,
    overrideGuards: row.override_guards,
    counts: row.counts,
    expired: row.expired,
    guard: row.guard,
    deletionId: row.deletion_id,
    jobId: row.job_id,
    error: row.error,
    createdAt: row.created_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    summary: runSummary(row),
  }
}

export function runSummary(row: RunRow): string {
  const what = row.counts
    ? `${plural(row.counts.expiredArtifacts, 'manifest')} (${plural(row.counts.expiredTags, 'tag')}, ${formatBytes(row.counts.bytes)}${row.counts.keptInUse ? `; ${row.counts.keptInUse} kept because in use` : ''})`
    : ''
  switch (row.state) {
    case 'queued':
    case 'running':
      return `Retention run ${row.id} is ${row.state}`
    case 'nothing':
      return `Retention run ${row.id} found nothing to delete`
    case 'guarded':
      return `Retention run ${row.id} stopped for an admin: ${row.guard?.reasons.join('; ') ?? 'guard'}; an admin may run it with overrideGuards`
    case 'proposed':
      return `Retention run ${row.id} proposed deletion ${row.deletion_id} of ${what}: awaiting approval`
    case 'executing':
      return `Retention run ${row.id} filed deletion ${row.deletion_id} of ${what}, approved by the rules`
    case 'failed':
      return `Retention run ${row.id} failed: ${row.error ?? 'unknown error'}`
    default:
      return `Retention preview ${row.id}: ${what}`
  }
}
