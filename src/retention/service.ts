import type pg from 'pg'
import type { Principal, RequestContext } from '../auth/principal.js'
import type { DeletionService } from '../deletions/service.js'
import type { GovernanceConfig } from '../governance/index.js'
import { activeHolds } from '../holds/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import type { RegistrySet } from '../registries/registry-set.js'
import type { RetentionConfig } from './config-schema.js'
import { checkGuards, type Evaluation, evaluatePolicy, type PolicyEvaluator } from './evaluate.js'
import type { ActivitySource } from './facts.js'
import { type PolicyInput, RetentionPolicies } from './policies.js'
import { type RetentionNotifier, RetentionRuns } from './runs.js'
import type { GuardResult, PolicyFields, RunRow } from './sql.js'
import type { UsageLookup } from './usage.js'
import type { PolicyView, PreviewView, RunView } from './views.js'

export interface RetentionDeps {
  pool: pg.Pool
  registries: RegistrySet
  browse: BrowseService
  deletions: DeletionService
  governance: GovernanceConfig
  config: RetentionConfig & { fanOut: number }
  activity: ActivitySource
  /** Outbound notifications (policy.proposed, policy.warning), inside the caller's transaction. */
  notifier?: RetentionNotifier
  /** In-use awareness: what runs or is referenced is never expired. */
  usage?: UsageLookup
  /** The time ages are judged against (default real time): tests move it instead of waiting. */
  now?: () => Date
}

/**
 * Retention as one service for routes, resolvers and jobs: policies (policies.ts), their runs
 * (runs.ts), and the evaluation both judge by. Previews and runs evaluate through this object, so
 * whatever wraps `evaluate` here sees every evaluation.
 */
export class RetentionService implements PolicyEvaluator {
  private readonly policies: RetentionPolicies
  private readonly runs: RetentionRuns
  private readonly now: () => Date

  constructor(private readonly deps: RetentionDeps) {
    this.now = deps.now ?? (() => new Date())
    this.policies = new RetentionPolicies({
      pool: deps.pool,
      registries: deps.registries,
      governance: deps.governance,
      evaluator: this,
    })
    this.runs = new RetentionRuns({
      pool: deps.pool,
      deletions: deps.deletions,
      notifier: deps.notifier,
      maxAttempts: deps.config.maxAttempts,
      evaluator: this,
      policies: this.policies,
    })
  }

  async evaluate(policy: PolicyFields): Promise<Evaluation> {
    const { config, usage } = this.deps
    return evaluatePolicy(
      {
        registries: this.deps.registries,
        browse: this.deps.browse,
        activity: this.deps.activity,
        governance: this.deps.governance,
        holds: await activeHolds(this.deps.pool),
        now: this.now(),
        concurrency: config.concurrency,
        fanOut: config.fanOut,
        ...(usage ? { usage } : {}),
      },
      policy,
    )
  }

  guard(evaluation: Evaluation, policy: PolicyFields): GuardResult {
    return checkGuards(evaluation, this.deps.config.guards, policy.guards)
  }

  // ---- policies --------------------------------------------------------------------------------

  list(principal: Principal, filters: { team?: string; registry?: string }): Promise<PolicyView[]> {
    return this.policies.list(principal, filters)
  }

  get(principal: Principal, id: string): Promise<PolicyView> {
    return this.policies.get(principal, id)
  }

  create(principal: Principal, context: RequestContext, input: PolicyInput): Promise<PolicyView> {
    return this.policies.create(principal, context, input)
  }

  update(principal: Principal, context: RequestContext, id: string, input: PolicyInput): Promise<PolicyView> {
    return this.policies.update(principal, context, id, input)
  }

  remove(principal: Principal, context: RequestContext, id: string): Promise<PolicyView> {
    return this.policies.remove(principal, context, id)
  }

  preview(principal: Principal, id: string): Promise<PreviewView> {
    return this.policies.preview(principal, id)
  }

  previewUnsaved(principal: Principal, input: PolicyInput): Promise<PreviewView> {
    return this.policies.previewUnsaved(principal, input)
  }

  /** Whether the principal may follow the jobs of this policy (its runs and warnings). */
  policyVisibleTo(principal: Principal, policyId: string): Promise<boolean> {
    return this.policies.visibleTo(principal, policyId)
  }

  // ---- runs ------------------------------------------------------------------------------------

  requestRun(
    principal: Principal,
    context: RequestContext,
    id: string,
    options: { overrideGuards?: boolean },
  ): Promise<RunView> {
    return this.runs.request(principal, context, id, options)
  }

  /** Inside the caller's transaction: the run's job, and the job id on the run. */
  enqueue(client: pg.PoolClient, run: RunRow): Promise<RunRow> {
    return this.runs.enqueue(client, run)
  }

  listRuns(principal: Principal, id: string, limit?: number): Promise<RunView[]> {
    return this.runs.list(principal, id, limit)
  }

  getRun(principal: Principal, id: string, runId: string): Promise<RunView> {
    return this.runs.get(principal, id, runId)
  }

  runVisibleTo(principal: Principal, runId: string): Promise<boolean> {
    return this.runs.visibleTo(principal, runId)
  }

  /** The `retention.run` job. */
  executeRun(runId: string): Promise<RunView> {
    return this.runs.execute(runId)
  }

  /** The `retention.warn` job. */
  warn(policyId: string, slot: Date): Promise<{ expired: number; notified: number }> {
    return this.runs.warn(policyId, slot)
  }

  /** The `retention.run` job's failure hook, in the transaction that fails the job. */
  failRun(client: pg.PoolClient, runId: string, error: string | null): Promise<void> {
    return this.runs.fail(client, runId, error)
  }
}
