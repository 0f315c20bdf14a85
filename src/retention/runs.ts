import type pg from 'pg'
import { appendAuditEvent, auditActor } from '../audit/index.js'
import { isAdmin, type Principal, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import type { DeletionService } from '../deletions/service.js'
import { errors } from '../errors.js'
import { formatBytes, plural } from '../http/format.js'
import { enqueueJob } from '../jobs/index.js'
import { SYSTEM_PRINCIPAL } from '../lib/system.js'
import { policyPrincipal, requireManager, requireViewer } from './access.js'
import type { PolicyEvaluator } from './evaluate.js'
import { loadPolicy, type RetentionPolicies } from './policies.js'
import {
  getPolicy,
  getRun,
  insertRun,
  listRuns,
  type PolicyRow,
  type RunOutcome,
  type RunRow,
  setRunOutcome,
} from './sql.js'
import { type RunView, runSummary, toRunView } from './views.js'

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

/**
 * Retention runs, by schedule or on demand: a run evaluates its policy, stops at the blast-radius
 * guard, or files one deletion request for everything expired as the policy itself
 * (`policy:<name>`, channel `policy`) through DeletionService, so plans, protections, holds,
 * approvals, execution and audit are exactly those of a person's request. Ahead of a scheduled run,
 * its owners are warned.
 */
export class RetentionRuns {
  constructor(
    private readonly deps: {
      pool: pg.Pool
      deletions: DeletionService
      evaluator: PolicyEvaluator
      policies: RetentionPolicies
      /** Attempts of a run's job (`retention.maxAttempts`). */
      maxAttempts: number
      /** Outbound notifications (policy.proposed, policy.warning), inside the caller's transaction. */
      notifier?: RetentionNotifier | undefined
    },
  ) {}

  /** Queues a run now; it evaluates, checks the guard and files its request in the job. */
  async request(
    principal: Principal,
    context: RequestContext,
    id: string,
    options: { overrideGuards?: boolean },
  ): Promise<RunView> {
    const row = await withTransaction(this.deps.pool, async (client) => {
      const policy = await getPolicy(client, id)
      if (!policy) throw new errors.POLICY_NOT_FOUND(id)
      requireManager(principal, policy.team)
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
      maxAttempts: this.deps.maxAttempts,
    })
    return setRunOutcome(client, run.id, { state: 'queued', jobId: job.id })
  }

  async list(principal: Principal, id: string, limit = 50): Promise<RunView[]> {
    requireViewer(principal)
    const policy = await loadPolicy(this.deps.pool, id)
    return (await listRuns(this.deps.pool, policy.id, limit)).map(toRunView)
  }

  async get(principal: Principal, id: string, runId: string): Promise<RunView> {
    requireViewer(principal)
    const run = await getRun(this.deps.pool, runId)
    if (!run || run.policy_id !== id) throw new errors.POLICY_RUN_NOT_FOUND(runId, id)
    return toRunView(run)
  }

  /** Whether the principal may follow this run's job: those who may follow its policy's. */
  async visibleTo(principal: Principal, runId: string): Promise<boolean> {
    const run = await getRun(this.deps.pool, runId)
    return run !== undefined && this.deps.policies.visibleTo(principal, run.policy_id)
  }

  /**
   * The job: evaluate, stop at the guard, or file one deletion request for everything expired.
   * Idempotent: a run that already ended is returned as it is, and the request is filed with an
   * Idempotency-Key, so a retried job finds the request its first attempt created.
   */
  async execute(runId: string): Promise<RunView> {
    const { pool, evaluator } = this.deps
    const run = await getRun(pool, runId)
    if (!run) throw new errors.POLICY_RUN_NOT_FOUND(runId, '?')
    if (run.state !== 'queued' && run.state !== 'running') return toRunView(run)
    const policy = await getPolicy(pool, run.policy_id)
    const context: RequestContext = { requestId: `retention-run-${run.id}` }
    if (!policy?.enabled) {
      return this.finish(run, policy, context, {
        state: 'failed',
        error: policy ? 'the policy was disabled before the run started' : 'the policy was deleted',
      })
    }
    await setRunOutcome(pool, run.id, { state: 'running' })
    const evaluation = await evaluator.evaluate(policy)
    const guard = evaluator.guard(evaluation, policy)
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
      const { deletion } = await this.deps.deletions.create(
        principal,
        context,
        input,
        `retention-run-${run.id}`,
        {
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
        },
      )
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
    const { pool, evaluator } = this.deps
    const policy = await getPolicy(pool, policyId)
    if (!policy?.enabled) return { expired: 0, notified: 0 }
    const evaluation = await evaluator.evaluate(policy)
    const notify = this.deps.notifier
    if (evaluation.expired.length === 0 || !notify) return { expired: evaluation.expired.length, notified: 0 }
    const guard = evaluator.guard(evaluation, policy)
    const notified = await withTransaction(pool, (client) =>
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
  async fail(client: pg.PoolClient, runId: string, error: string | null): Promise<void> {
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
    const row = await withTransaction(this.deps.pool, (client) =>
      this.record(client, run, policy, context, outcome),
    )
    return toRunView(row)
  }

  /** A run's end: its outcome, the owners told of a proposal, and its audit event, in one transaction. */
  private async record(
    client: pg.PoolClient,
    run: RunRow,
    policy: PolicyRow | undefined,
    context: RequestContext,
    outcome: Omit<RunOutcome, 'finished'>,
  ): Promise<RunRow> {
    const row = await setRunOutcome(client, run.id, { ...outcome, finished: true })
    const notify = this.deps.notifier
    if (
      policy &&
      notify &&
      (outcome.state === 'proposed' || outcome.state === 'executing' || outcome.state === 'guarded')
    ) {
      await notify(client, {
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
}
