import { createHash, randomUUID } from 'node:crypto'
import type pg from 'pg'
import {
  type AuditActor,
  type AuditInput,
  appendAuditEvent,
  auditActor,
  auditAlone,
  canonicalJson,
} from '../audit/index.js'
import { isAdmin, type Principal, personOf, type RequestContext } from '../auth/principal.js'
import { errors } from '../errors.js'
import { type GovernanceConfig, mayRequest, owningTeams } from '../governance/index.js'
import { activeHolds } from '../holds/index.js'
import { enqueueJob } from '../jobs/index.js'
import type { Notifier } from '../notifications/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { EXECUTE_DELETION } from './execute.js'
import type { DeletionGate } from './gates.js'
import { insertItems, itemTallies } from './items-sql.js'
import { type DeletionNotificationType, deletionEvent } from './notifications.js'
import { type Plan, resolvePlan, type Target, type Verb } from './plan.js'
import {
  type DeletionFilters,
  type DeletionRow,
  getDeletion,
  listApprovals,
  setDeletionState,
} from './sql.js'
import { assertTransition, type DeletionState } from './state-machine.js'
import type { UsageGuard } from './usage-check.js'
import { type DeletionView, toView } from './views.js'

export interface CreateDeletionInput {
  registry: string
  verb: Verb
  targets: Target[]
  reason: string
  ticket?: string
  dryRun?: boolean
  /**
   * At least one approval even where the rules need none: a retention policy in `propose` mode
   * files requests a person must look at.
   */
  requireApproval?: string
}

/** What `list` filters on: the SQL filters, and the caller's approval inbox. */
export interface DeletionListFilters extends DeletionFilters {
  /** Only requests the caller may approve now and has not decided on yet. */
  awaitingMyApproval?: boolean
}

/** Whether the caller may do something with a request now, and if not, why not. */
export interface ActionVerdict {
  allowed: boolean
  reason: string | null
}

export interface DeletionActions {
  approve: ActionVerdict
  reject: ActionVerdict
  cancel: ActionVerdict
  retry: ActionVerdict
  restore: ActionVerdict
  replan: ActionVerdict
}

/** Rows read per round while the inbox filters by eligibility, which is not SQL. */
export const INBOX_BATCH = 200
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * What every part of the deletion service shares: its dependencies, the gates other features add,
 * and the steps each part composes (a state change with its audit event, queueing the execution,
 * the views callers get).
 */
export class DeletionCore {
  constructor(
    protected readonly pool: pg.Pool,
    protected readonly registries: RegistrySet,
    protected readonly browse: BrowseService,
    protected readonly governance: GovernanceConfig,
    protected readonly execution: { maxAttempts: number },
    protected readonly notifier?: Notifier,
    protected readonly usage?: UsageGuard,
  ) {}

  /** What other features say before executions and restores run (see gates.ts). */
  readonly gates: DeletionGate[] = []

  addGate(gate: DeletionGate): void {
    this.gates.push(gate)
  }

  protected async transition(
    client: pg.PoolClient,
    current: DeletionRow,
    to: DeletionState,
    audit: Omit<AuditInput, 'action' | 'outcome'>,
  ): Promise<DeletionRow> {
    assertTransition(current.state, to)
    const updated = await setDeletionState(client, current.id, current.state, to)
    if (!updated) throw new errors.ILLEGAL_TRANSITION(current.state, to)
    await appendAuditEvent(client, {
      ...audit,
      action: `deletion.${to}`,
      outcome: to,
      details: { from: current.state, ...audit.details },
    })
    return updated
  }

  /**
   * approved → queued: the plan's items, the execution job and the audit event commit together with
   * the approval, so an approved request always has a job and a job always has its request.
   */
  protected async enqueueExecution(
    client: pg.PoolClient,
    row: DeletionRow,
    actor: AuditActor,
    why: string,
  ): Promise<DeletionRow> {
    await insertItems(client, row.id, row.plan.items)
    const { job } = await enqueueJob(client, {
      kind: EXECUTE_DELETION,
      payload: { deletionId: row.id },
      registry: row.registry,
      uniqueKey: `deletion:${row.id}:${randomUUID()}`,
      maxAttempts: this.execution.maxAttempts,
    })
    const queued = await this.transition(client, row, 'queued', {
      ...actor,
      registry: row.registry,
      deletionId: row.id,
      details: { jobId: job.id, why },
    })
    await client.query('UPDATE deletion_requests SET job_id = $2::uuid WHERE id = $1::uuid', [row.id, job.id])
    return { ...queued, job_id: job.id }
  }

  /**
   * Emits a notification about the request inside the caller's transaction (an outbox: it exists
   * only if the state change commits). The execution handler calls it too, for the final states.
   */
  async announce(client: pg.PoolClient, row: DeletionRow, type: DeletionNotificationType): Promise<void> {
    if (!this.notifier?.active) return
    const approvals = await listApprovals(client, [row.id])
    const tally = (await itemTallies(client, [row.id])).get(row.id)
    const view = toView(row, approvals, tally?.counts, tally?.planChanged ?? 0)
    await this.notifier.notify(client, deletionEvent(type, view, row.owning_teams))
  }

  protected async resolve(input: CreateDeletionInput, options: { fresh: boolean }): Promise<Plan> {
    const holds = await activeHolds(this.pool)
    return resolvePlan(
      {
        registries: this.registries,
        browse: this.browse,
        governance: this.governance,
        holds,
        now: new Date(),
        fresh: options.fresh,
        ...(this.usage ? { usage: this.usage } : {}),
      },
      input.registry,
      input.verb,
      input.targets,
    )
  }

  protected repositoriesOf(input: CreateDeletionInput) {
    this.registries.get(input.registry)
    return [...new Set(input.targets.map((t) => t.repository))].map((repository) => ({
      repository,
      owningTeams: owningTeams(this.governance, input.registry, repository),
    }))
  }

  protected async authorizeRequester(
    principal: Principal,
    context: RequestContext,
    input: CreateDeletionInput,
    repositories: { repository: string; owningTeams: string[] }[],
  ) {
    const eligible = mayRequest(principal, repositories)
    if (eligible.ok) return
    await this.audit(principal, context, {
      action: 'deletion.denied',
      outcome: 'denied',
      registry: input.registry,
      repository: repositories.length === 1 ? repositories[0]!.repository : null,
      details: {
        code: eligible.code,
        reason: eligible.message,
        verb: input.verb,
        dryRun: input.dryRun === true,
      },
    })
    throw new errors.REQUESTER_NOT_ELIGIBLE(eligible.message)
  }

  protected async audit(
    principal: Principal,
    context: RequestContext,
    event: Omit<AuditInput, keyof ReturnType<typeof auditActor>>,
  ) {
    await auditAlone(this.pool, auditActor(principal, context), event)
  }

  protected async replay(existing: DeletionRow, fingerprint: string, key: string) {
    if (existing.request_fingerprint !== fingerprint) throw new errors.IDEMPOTENCY_CONFLICT(key)
    return { deletion: await this.view(existing), created: false }
  }

  protected async visibleRow(principal: Principal, id: string): Promise<DeletionRow> {
    const row = await getDeletion(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    return row
  }

  protected async view(row: DeletionRow): Promise<DeletionView> {
    return (await this.views([row]))[0]!
  }

  protected async views(rows: DeletionRow[]): Promise<DeletionView[]> {
    const ids = rows.map((r) => r.id)
    const [approvals, tallies] = await Promise.all([
      listApprovals(this.pool, ids),
      itemTallies(this.pool, ids),
    ])
    return rows.map((row) =>
      toView(
        row,
        approvals.filter((a) => a.deletion_id === row.id),
        tallies.get(row.id)?.counts,
        tallies.get(row.id)?.planChanged ?? 0,
      ),
    )
  }
}

/** States a request can be filed again from: still waiting, or executed with items left alone. */
export const REPLANNABLE = new Set<DeletionState>([
  'awaiting_approval',
  'expired',
  'partially_failed',
  'failed',
])

export function fingerprintOf(principal: Principal, input: CreateDeletionInput): string {
  const { dryRun: _dryRun, ...body } = input
  return createHash('sha256')
    .update(canonicalJson({ ...body, ticket: body.ticket ?? null, onBehalfOf: principal.onBehalfOf ?? null }))
    .digest('hex')
}

/** Admins see everything; others their own requests and those of their teams' repositories. */
export function visible(principal: Principal, row: DeletionRow): boolean {
  if (isAdmin(principal)) return true
  if (personOf(principal) === row.requester_person || principal.subject === row.requester_subject) return true
  return principal.roles.length > 0 && row.owning_teams.some((team) => principal.teams.includes(team))
}

export function requesterOrAdmin(principal: Principal, row: DeletionRow): boolean {
  return personOf(principal) === row.requester_person || isAdmin(principal)
}

/** Restoring is an approver's call: an admin, or an approver of a team owning the repositories. */
export function mayRestore(principal: Principal, row: DeletionRow): boolean {
  return (
    isAdmin(principal) ||
    (principal.roles.includes('approver') && row.owning_teams.some((t) => principal.teams.includes(t)))
  )
}

/** `why` answers the reason it is not allowed, or null when it is. */
export function verdict(why: () => string | null): ActionVerdict {
  const reason = why()
  return { allowed: reason === null, reason }
}
