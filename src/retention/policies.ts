import type pg from 'pg'
import { appendAuditEvent, auditActor } from '../audit/index.js'
import type { Principal, RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { globProblem } from '../governance/globs.js'
import type { GovernanceConfig } from '../governance/index.js'
import { parseCron } from '../lib/cron.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { requireManager, requireTeamViewer, requireViewer, seesTeam } from './access.js'
import { diffAgainst, type PolicyEvaluator } from './evaluate.js'
import { type RetentionRule, ruleSetProblems } from './rules.js'
import {
  deletePolicy,
  getPolicy,
  insertPolicy,
  insertRun,
  listPolicies,
  type PolicyFields,
  type PolicyGuards,
  type PolicyRow,
  previousEvaluation,
  type RunRow,
  setRunOutcome,
  updatePolicy,
} from './sql.js'
import { type PolicyView, type PreviewView, toPolicyView, toPreviewView } from './views.js'

/** A policy as REST and GraphQL take it. */
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

/** A saved policy, or REGENT_POLICY_NOT_FOUND. */
export async function loadPolicy(pool: pg.Pool, id: string): Promise<PolicyRow> {
  const row = await getPolicy(pool, id)
  if (!row) throw new errors.POLICY_NOT_FOUND(id)
  return row
}

/**
 * Retention policies themselves: created, changed and deleted by their team's approvers (global
 * ones by admins), each change audited with the policy as it became; previewed with a reason for
 * every verdict, saved or not.
 */
export class RetentionPolicies {
  constructor(
    private readonly deps: {
      pool: pg.Pool
      registries: RegistrySet
      governance: GovernanceConfig
      evaluator: PolicyEvaluator
    },
  ) {}

  async list(principal: Principal, filters: { team?: string; registry?: string }): Promise<PolicyView[]> {
    requireViewer(principal)
    return (await listPolicies(this.deps.pool, filters)).map(toPolicyView)
  }

  async get(principal: Principal, id: string): Promise<PolicyView> {
    requireViewer(principal)
    return toPolicyView(await loadPolicy(this.deps.pool, id))
  }

  async create(principal: Principal, context: RequestContext, input: PolicyInput): Promise<PolicyView> {
    const fields = this.validate(input)
    requireManager(principal, fields.team)
    const row = await withTransaction(this.deps.pool, async (client) => {
      const inserted = await insertPolicy(client, fields, principal.subject)
      if (!inserted) throw new errors.POLICY_NAME_TAKEN(fields.name)
      await auditPolicy(client, principal, context, 'retention.policy_created', inserted)
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
    const row = await withTransaction(this.deps.pool, async (client) => {
      const current = await getPolicy(client, id, { forUpdate: true })
      if (!current) throw new errors.POLICY_NOT_FOUND(id)
      // Both the team it belongs to and the team it would move to must be the principal's.
      requireManager(principal, current.team)
      requireManager(principal, fields.team)
      const updated = await updatePolicy(client, id, fields, principal.subject).catch((err) => {
        if ((err as { code?: string }).code === '23505') throw new errors.POLICY_NAME_TAKEN(fields.name)
        throw err
      })
      if (!updated) throw new errors.POLICY_NOT_FOUND(id)
      await auditPolicy(client, principal, context, 'retention.policy_updated', updated, {
        previousVersion: current.version,
      })
      return updated
    })
    return toPolicyView(row)
  }

  async remove(principal: Principal, context: RequestContext, id: string): Promise<PolicyView> {
    const row = await withTransaction(this.deps.pool, async (client) => {
      const current = await getPolicy(client, id, { forUpdate: true })
      if (!current) throw new errors.POLICY_NOT_FOUND(id)
      requireManager(principal, current.team)
      const deleted = (await deletePolicy(client, id, principal.subject)) as PolicyRow
      await auditPolicy(client, principal, context, 'retention.policy_deleted', deleted)
      return deleted
    })
    return toPolicyView(row)
  }

  /** Whether the principal may follow the jobs of this policy (its runs and warnings). */
  async visibleTo(principal: Principal, policyId: string): Promise<boolean> {
    const policy = await getPolicy(this.deps.pool, policyId)
    return policy !== undefined && seesTeam(principal, policy.team)
  }

  /** Evaluates a saved policy now and keeps the result, so the next preview or run can diff. */
  async preview(principal: Principal, id: string): Promise<PreviewView> {
    const { pool, evaluator } = this.deps
    requireViewer(principal)
    const policy = await loadPolicy(pool, id)
    requireTeamViewer(principal, policy.team)
    const evaluation = await evaluator.evaluate(policy)
    const previous = await previousEvaluation(pool, policy.id)
    const run = (await insertRun(pool, {
      policyId: policy.id,
      policyVersion: policy.version,
      kind: 'preview',
      trigger: 'preview',
      state: 'previewed',
      requestedBy: principal.subject,
    })) as RunRow
    const guard = evaluator.guard(evaluation, policy)
    await setRunOutcome(pool, run.id, {
      state: 'previewed',
      counts: evaluation.counts,
      expired: evaluation.expired,
      guard,
      finished: true,
    })
    return toPreviewView(run.id, policy, evaluation, guard, diffAgainst(evaluation.expired, previous))
  }

  /** A dry run of a policy that is not saved: the same evaluation, nothing stored. */
  async previewUnsaved(principal: Principal, input: PolicyInput): Promise<PreviewView> {
    const { evaluator } = this.deps
    requireViewer(principal)
    const fields = this.validate(input)
    requireTeamViewer(principal, fields.team)
    const evaluation = await evaluator.evaluate(fields)
    const guard = evaluator.guard(evaluation, fields)
    return toPreviewView(null, fields, evaluation, guard, diffAgainst(evaluation.expired, undefined))
  }

  /** Shape and meaning checks; every problem is named, and nothing is stored on any. */
  private validate(input: PolicyInput): PolicyFields {
    const problems: string[] = []
    this.deps.registries.get(input.registry) // REGENT_REGISTRY_UNKNOWN for a registry not configured
    const team = input.team ?? null
    if (team && !this.deps.governance.teams.some((t) => t.name === team))
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
}

async function auditPolicy(
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
