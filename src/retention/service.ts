import type pg from 'pg'
import { appendAuditEvent, auditActor } from '../audit/index.js'
import { hasRole, isAdmin, type Principal, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import type { DeletionService } from '../deletions/service.js'
import { errors } from '../errors.js'
import { parseCron } from '../gc/cron.js'
import { globProblem } from '../governance/globs.js'
import type { GovernanceConfig } from '../governance/index.js'
import { activeHolds } from '../holds/index.js'
import { formatBytes, plural } from '../http/format.js'
import { enqueueJob } from '../jobs/index.js'
import { SYSTEM_PRINCIPAL } from '../lib/system.js'
import type { BrowseService } from '../registries/browse-service.js'
import type { RegistrySet } from '../registries/registry-set.js'
import type { RetentionConfig } from './config-schema.js'
import { checkGuards, diffAgainst, type Evaluation, type EvaluationDiff, evaluatePolicy } from './evaluate.js'
import type { ActivitySource } from './facts.js'
import { type RetentionRule, ruleSetProblems } from './rules.js'
import {
  deletePolicy,
  type GuardResult,
  getPolicy,
  getRun,
  insertPolicy,
  insertRun,
  listPolicies,
  listRuns,
  type PolicyFields,
  type PolicyGuards,
  type PolicyRow,
  previousEvaluation,
  type RunOutcome,
  type RunRow,
  setRunOutcome,
  updatePolicy,
} from './sql.js'
import type { UsageLookup } from './usage.js'

export const RETENTION_RUN = 'retention.run'

export interface RetentionNotification {
  type: 'policy.proposed' | 'policy.warning'
  subject: string
  registry: string
  teams: string[]
  summary: string
  data: Record<string, unknown>
}

export type RetentionNotifier = (client: pg.PoolClient, event: RetentionNotification) => Promise<number>

export interface PolicyInput {
  name: string
  team?: string | null
  registry: string
  repositories: string[]
  rules: RetentionRule[]
  default?: 'keep' | 'expire'
  schedule?: string | null
  mode?: 'propose' | 'auto'
  enabled?: boolean
  guards?: PolicyGuards
}

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

/**
 * Retention policies: managed by their team's approvers (global ones by admins), previewed with a
 * reason for every verdict, and run by schedule or on demand. A run files a deletion request as
 * the policy itself (`policy:<name>`, channel `policy`) through DeletionService, so plans,
 * protections, holds, approvals, execution and audit are exactly those of a person's request.
 */
export class RetentionService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly registries: RegistrySet,
    private readonly browse: BrowseService,
    private readonly deletions: DeletionService,
    private readonly governance: GovernanceConfig,
    private readonly config: RetentionConfig & { fanOut: number },
    private readonly activity: ActivitySource,
    /** Outbound notifications (policy.proposed, policy.warning), inside the caller's transaction. */
    private readonly notifier?: RetentionNotifier,
    /** In-use awareness: what runs or is referenced is never expired. */
    private readonly usage?: UsageLookup,
  ) {}

  async list(principal: Principal, filters: { team?: string; registry?: string }): Promise<PolicyView[]> {
    requireViewer(principal)
    return (await listPolicies(this.pool, filters)).map(toPolicyView)
  }

  async get(principal: Principal, id: string): Promise<PolicyView> {
    requireViewer(principal)
    return toPolicyView(await this.load(id))
  }

  async create(principal: Principal, context: RequestContext, input: PolicyInput): Promise<PolicyView> {
    const fields = this.validate(input)
    this.requireManager(principal, fields.team)
    const row = await withTransaction(this.pool, async (client) => {
      const inserted = await insertPolicy(client, fields, principal.subject)
      if (!inserted) throw new errors.POLICY_NAME_TAKEN(fields.name)
      await this.auditPolicy(client, principal, context, 'retention.policy_created', inserted)
      return inserted
    })
    return toPolicyView(row)
  }

  async update(
    principal: Principal,
    context: RequestContext,
    id: string,
    input: PolicyInput,
  ): Promise<PolicyView> {
    const fields = this.validate(input)
    const row = await withTransaction(this.pool, async (client) => {
      const current = await getPolicy(client, id, { forUpdate: true })
      if (!current) throw new errors.POLICY_NOT_FOUND(id)
      // Both the team it belongs to and the team it would move to must be the principal's.
      this.requireManager(principal, current.team)
      this.requireManager(principal, fields.team)
      const updated = await updatePolicy(client, id, fields, principal.subject).catch((err) => {
        if ((err as { code?: string }).code === '23505') throw new errors.POLICY_NAME_TAKEN(fields.name)
        throw err
      })
      if (!updated) throw new errors.POLICY_NOT_FOUND(id)
      await this.auditPolicy(client, principal, context, 'retention.policy_updated', updated, {
        previousVersion: current.version,
      })
      return updated
    })
    return toPolicyView(row)
  }

  async remove(principal: Principal, context: RequestContext, id: string): Promise<PolicyView> {
    const row = await withTransaction(this.pool, async (client) => {
      const current = await getPolicy(client, id, { forUpdate: true })
      if (!current) throw new errors.POLICY_NOT_FOUND(id)
      this.requireManager(principal, current.team)
      const deleted = (await deletePolicy(client, id, principal.subject)) as PolicyRow
      await this.auditPolicy(client, principal, context, 'retention.policy_deleted', deleted)
      return deleted
    })
    return toPolicyView(row)
  }

  /** Whether the principal may follow the jobs of this policy (its runs and warnings). */
  async policyVisibleTo(principal: Principal, policyId: string): Promise<boolean> {
    const policy = await getPolicy(this.pool, policyId)
    return policy !== undefined && seesTeam(principal, policy.team)
  }

  async runVisibleTo(principal: Principal, runId: string): Promise<boolean> {
    const run = await getRun(this.pool, runId)
    return run !== undefined && this.policyVisibleTo(principal, run.policy_id)
  }

  /** Evaluates a saved policy now and keeps the result, so the next preview or run can diff. */
  async preview(principal: Principal, id: string): Promise<PreviewView> {
    requireViewer(principal)
    const policy = await this.load(id)
    requireTeamViewer(principal, policy.team)
    const evaluation = await this.evaluate(policy)
    const previous = await previousEvaluation(this.pool, policy.id)
    const run = (await insertRun(this.pool, {
      policyId: policy.id,
      policyVersion: policy.version,
      kind: 'preview',
      trigger: 'preview',
      state: 'previewed',
      requestedBy: principal.subject,
    })) as RunRow
    const guard = this.guard(evaluation, policy)
    await setRunOutcome(this.pool, run.id, {
      state: 'previewed',
      counts: evaluation.counts,
      expired: evaluation.expired,
      guard,
      finished: true,
    })
    return this.previewView(run.id, policy, evaluation, guard, diffAgainst(evaluation.expired, previous))
  }

  /** A dry run of a policy that is not saved: the same evaluation, nothing stored. */
  async previewUnsaved(principal: Principal, input: PolicyInput): Promise<PreviewView> {
    requireViewer(principal)
    const fields = this.validate(input)
    requireTeamViewer(principal, fields.team)
    const evaluation = await this.evaluate(fields)
    const guard = this.guard(evaluation, fields)
    return this.previewView(null, fields, evaluation, guard, diffAgainst(evaluation.expired, undefined))
  }

  /** Queues a run now; it evaluates, checks the guard and files its request in the job. */
  async requestRun(
    principal: Principal,
    context: RequestContext,
    id: string,
    options: { overrideGuards?: boolean },
  ): Promise<RunView> {
    const row = await withTransaction(this.pool, async (client) => {
      const policy = await getPolicy(client, id)
      if (!policy) throw new errors.POLICY_NOT_FOUND(id)
      this.requireManager(principal, policy.team)
      if (options.overrideGuards && !isAdmin(principal))
        throw new errors.FORBIDDEN('only an admin may run a policy past its blast-radius guards')
      const run = (await insertRun(client, {
        policyId: policy.id,
        policyVersion: policy.version,
        kind: 'run',
        trigger: 'manual',
        state: 'queued',
        requestedBy: principal.subject,
        overrideGuards: options.overrideGuards ?? false,
      })) as RunRow
      await appendAuditEvent(client, {
        ...auditActor(principal, context),
        action: 'retention.run_requested',
        outcome: 'queued',
        registry: policy.registry,
        details: {
          policyId: policy.id,
          policy: policy.name,
          runId: run.id,
          overrideGuards: run.override_guards,
        },
      })
      return this.enqueue(client, run)
    })
    return toRunView(row)
  }

  /** Inside the caller's transaction: the run's job, and the job id on the run. */
  async enqueue(client: pg.PoolClient, run: RunRow): Promise<RunRow> {
    const { job } = await enqueueJob(client, {
      kind: RETENTION_RUN,
      payload: { runId: run.id },
      uniqueKey: `retention-run:${run.id}`,
      maxAttempts: this.config.maxAttempts,
    })
    return setRunOutcome(client, run.id, { state: 'queued', jobId: job.id })
  }

  async listRuns(principal: Principal, id: string, limit = 50): Promise<RunView[]> {
    requireViewer(principal)
    const policy = await this.load(id)
    return (await listRuns(this.pool, policy.id, limit)).map(toRunView)
  }

  async getRun(principal: Principal, id: string, runId: string): Promise<RunView> {
    requireViewer(principal)
    const run = await getRun(this.pool, runId)
    if (!run || run.policy_id !== id) throw new errors.POLICY_RUN_NOT_FOUND(runId, id)
    return toRunView(run)
  }

  /**
   * The job: evaluate, stop at the guard, or file one deletion request for everything expired.
   * Idempotent: a run that already ended is returned as it is, and the request is filed with an
   * Idempotency-Key, so a retried job finds the request its first attempt created.
   */
  async executeRun(runId: string): Promise<RunView> {
    const run = await getRun(this.pool, runId)
    if (!run) throw new errors.POLICY_RUN_NOT_FOUND(runId, '?')
    if (run.state !== 'queued' && run.state !== 'running') return toRunView(run)
    const policy = await getPolicy(this.pool, run.policy_id)
    const context: RequestContext = { requestId: `retention-run-${run.id}` }
    if (!policy?.enabled) {
      return this.finish(run, policy, context, {
        state: 'failed',
        error: policy ? 'the policy was disabled before the run started' : 'the policy was deleted',
      })
    }
    await setRunOutcome(this.pool, run.id, { state: 'running' })
    const evaluation = await this.evaluate(policy)
    const guard = this.guard(evaluation, policy)
    const found = { counts: evaluation.counts, expired: evaluation.expired, guard }
    if (evaluation.expired.length === 0)
      return this.finish(run, policy, context, { ...found, state: 'nothing' })
    if (guard.tripped && !run.override_guards)
      return this.finish(run, policy, context, { ...found, state: 'guarded' })

    const principal = policyPrincipal(policy)
    const input = {
      registry: policy.registry,
      verb: 'delete-image' as const,
      targets: evaluation.expired.map((e) => ({ repository: e.repository, digest: e.digest })),
      reason: `Retention policy ${policy.name} (run ${run.id}): ${plural(evaluation.expired.length, 'manifest')}, ${plural(evaluation.counts.expiredTags, 'tag')}`,
      ...(policy.mode === 'propose'
        ? { requireApproval: `retention policy ${policy.name} is in propose mode: a person approves` }
        : {}),
    }
    try {
      const judged = new Map(evaluation.expired.map((e) => [`${e.repository}@${e.digest}`, new Set(e.tags)]))
      const { deletion } = await this.deletions.create(principal, context, input, `retention-run-${run.id}`, {
        // A tag pushed onto an expired digest after the evaluation would vanish with it unjudged.
        vetPlan: (plan) => {
          for (const item of plan.items) {
            const tags = judged.get(`${item.repository}@${item.digest}`)
            const unjudged = tags ? item.vanishingTags.filter((t) => !tags.has(t)) : []
            if (unjudged.length > 0)
              throw new errors.POLICY_TARGETS_MOVED(
                `${item.repository}:${unjudged.join(', ')} now point at ${item.digest}, which the policy judged without them; run again`,
              )
          }
        },
      })
      return this.finish(run, policy, context, {
        ...found,
        state: deletion.state === 'awaiting_approval' ? 'proposed' : 'executing',
        deletionId: deletion.id,
      })
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode ?? 500
      // Refusals (protected, held, not eligible) end the run; registry trouble is retried.
      if (status >= 500) throw err
      return this.finish(run, policy, context, { ...found, state: 'failed', error: (err as Error).message })
    }
  }

  /**
   * Ahead of a scheduled slot: evaluates the policy and, when the run would delete something,
   * tells the owners (a `policy.warning` notification) what and when.
   */
  async warn(policyId: string, slot: Date): Promise<{ expired: number; notified: number }> {
    const policy = await getPolicy(this.pool, policyId)
    if (!policy?.enabled) return { expired: 0, notified: 0 }
    const evaluation = await this.evaluate(policy)
    if (evaluation.expired.length === 0 || !this.notifier)
      return { expired: evaluation.expired.length, notified: 0 }
    const guard = this.guard(evaluation, policy)
    const notify = this.notifier
    const notified = await withTransaction(this.pool, (client) =>
      notify(client, {
        type: 'policy.warning',
        subject: policy.id,
        registry: policy.registry,
        teams: policy.team ? [policy.team] : [],
        summary: `Retention policy ${policy.name} will delete ${plural(evaluation.expired.length, 'manifest')} (${plural(evaluation.counts.expiredTags, 'tag')}, ${formatBytes(evaluation.counts.bytes)}) at ${slot.toISOString()}${guard.tripped ? `, unless its guard stops it: ${guard.reasons.join('; ')}` : ''}`,
        data: {
          policyId: policy.id,
          policy: policy.name,
          mode: policy.mode,
          slot: slot.toISOString(),
          counts: { ...evaluation.counts },
          expired: evaluation.expired.map((e) => ({ ...e })),
        },
      }),
    )
    return { expired: evaluation.expired.length, notified }
  }

  /** The job gave up (worker onFailed): the run fails visibly, in the failing transaction. */
  async failRun(client: pg.PoolClient, runId: string, error: string | null): Promise<void> {
    const run = await getRun(client, runId, { forUpdate: true })
    if (!run || (run.state !== 'queued' && run.state !== 'running')) return
    const policy = await getPolicy(client, run.policy_id)
    await this.record(
      client,
      run,
      policy,
      { requestId: `retention-run-${run.id}` },
      {
        state: 'failed',
        error: error ?? 'the run job failed',
      },
    )
  }

  private async finish(
    run: RunRow,
    policy: PolicyRow | undefined,
    context: RequestContext,
    outcome: Omit<RunOutcome, 'finished'>,
  ): Promise<RunView> {
    const row = await withTransaction(this.pool, (client) =>
      this.record(client, run, policy, context, outcome),
    )
    return toRunView(row)
  }

  private async record(
    client: pg.PoolClient,
    run: RunRow,
    policy: PolicyRow | undefined,
    context: RequestContext,
    outcome: Omit<RunOutcome, 'finished'>,
  ): Promise<RunRow> {
    const row = await setRunOutcome(client, run.id, { ...outcome, finished: true })
    if (
      policy &&
      this.notifier &&
      (outcome.state === 'proposed' || outcome.state === 'executing' || outcome.state === 'guarded')
    ) {
      await this.notifier(client, {
        type: 'policy.proposed',
        subject: policy.id,
        registry: policy.registry,
        teams: policy.team ? [policy.team] : [],
        summary: runSummary(row),
        data: {
          policyId: policy.id,
          policy: policy.name,
          runId: run.id,
          state: outcome.state,
          deletionId: row.deletion_id,
          counts: outcome.counts ?? null,
        },
      })
    }
    const actor = policy
      ? auditActor(policyPrincipal(policy), context)
      : auditActor(SYSTEM_PRINCIPAL, context)
    await appendAuditEvent(client, {
      ...actor,
      action: `retention.run_${outcome.state === 'failed' ? 'failed' : outcome.state === 'guarded' ? 'guarded' : 'finished'}`,
      outcome: outcome.state,
      registry: policy?.registry ?? null,
      deletionId: outcome.deletionId ?? null,
      details: {
        policyId: run.policy_id,
        policy: policy?.name ?? null,
        runId: run.id,
        trigger: run.trigger,
        slot: run.slot?.toISOString() ?? null,
        counts: outcome.counts ?? null,
        guard: outcome.guard?.reasons ?? [],
        error: outcome.error ?? null,
      } as Record<string, unknown>,
    })
    return row
  }

  async evaluate(policy: PolicyFields): Promise<Evaluation> {
    return evaluatePolicy(
      {
        registries: this.registries,
        browse: this.browse,
        activity: this.activity,
        governance: this.governance,
        holds: await activeHolds(this.pool),
        now: new Date(),
        concurrency: this.config.concurrency,
        fanOut: this.config.fanOut,
        ...(this.usage ? { usage: this.usage } : {}),
      },
      policy,
    )
  }

  guard(evaluation: Evaluation, policy: PolicyFields): GuardResult {
    return checkGuards(evaluation, this.config.guards, policy.guards)
  }

  private previewView(
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

  private async load(id: string): Promise<PolicyRow> {
    const row = await getPolicy(this.pool, id)
    if (!row) throw new errors.POLICY_NOT_FOUND(id)
    return row
  }

  /** Shape and meaning checks; every problem is named, and nothing is stored on any. */
  private validate(input: PolicyInput): PolicyFields {
    const problems: string[] = []
    this.registries.get(input.registry) // REGENT_REGISTRY_UNKNOWN for a registry not configured
    const team = input.team ?? null
    if (team && !this.governance.teams.some((t) => t.name === team))
      problems.push(`team ${team} is not configured`)
    for (const glob of input.repositories) {
      const problem = globProblem(glob)
      if (problem) problems.push(`repositories: ${JSON.stringify(glob)} is not a repository glob: ${problem}`)
    }
    if (input.schedule) {
      try {
        parseCron(input.schedule)
      } catch (err) {
        problems.push(`schedule: ${(err as Error).message}`)
      }
    }
    const rules = { rules: input.rules, default: input.default ?? 'keep' }
    problems.push(...ruleSetProblems(rules))
    if (problems.length > 0) throw new errors.INVALID_POLICY(problems.join('; '))
    return {
      name: input.name,
      team,
      registry: input.registry,
      repositories: input.repositories,
      rules,
      guards: input.guards ?? {},
      schedule: input.schedule ?? null,
      mode: input.mode ?? 'propose',
      enabled: input.enabled ?? true,
    }
  }

  /** Admins manage every policy; a team's approvers manage that team's. */
  private requireManager(principal: Principal, team: string | null): void {
    if (isAdmin(principal)) return
    if (!team) throw new errors.FORBIDDEN('global retention policies are managed by admins')
    if (!principal.teams.includes(team) || !hasRole(principal, 'approver'))
      throw new errors.FORBIDDEN(`retention policies of ${team} are managed by its approvers and admins`)
  }

  private async auditPolicy(
    client: pg.PoolClient,
    principal: Principal,
    context: RequestContext,
    action: string,
    row: PolicyRow,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await appendAuditEvent(client, {
      ...auditActor(principal, context),
      action,
      outcome: 'succeeded',
      registry: row.registry,
      details: { policyId: row.id, policy: toPolicyView(row), ...extra } as Record<string, unknown>,
    })
  }
}

/** Who a run acts as: the policy itself, within its team (a global policy as an admin). */
export function policyPrincipal(policy: Pick<PolicyRow, 'name' | 'team'>): Principal {
  return {
    subject: `policy:${policy.name}`,
    teams: policy.team ? [policy.team] : [],
    roles: policy.team ? ['requester'] : ['admin'],
    channel: 'policy',
  }
}

function requireViewer(principal: Principal): void {
  if (principal.roles.length === 0)
    throw new errors.FORBIDDEN('retention policies need at least the viewer role')
}

/**
 * A preview evaluates every repository of the policy (registry calls, and a stored run row for a
 * saved policy): it is for the policy's own team, and a global policy's for admins.
 */
function requireTeamViewer(principal: Principal, team: string | null): void {
  if (seesTeam(principal, team)) return
  throw new errors.FORBIDDEN(
    team
      ? `previews of ${team}'s retention policies are for its members`
      : 'previews of global retention policies are for admins',
  )
}

/** A team's policy is its members' (with any role); a global policy is admins'. */
function seesTeam(principal: Principal, team: string | null): boolean {
  if (isAdmin(principal)) return true
  return team !== null && principal.roles.length > 0 && principal.teams.includes(team)
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

function runSummary(row: RunRow): string {
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
