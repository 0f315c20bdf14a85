import type pg from 'pg'
import { withTransaction } from '../db/transaction.js'
import { enqueueJob } from '../jobs/index.js'
import { floorMinute, MinuteSchedule, type ScheduleLogger } from '../jobs/minute-schedule.js'
import { type Cron, parseCron } from '../lib/cron.js'
import type { RetentionService } from './service.js'
import { claimWarning, insertRun, type PolicyRow, scheduledPolicies } from './sql.js'

export const RETENTION_WARN = 'retention.warn'

export interface FiredPolicySlot {
  policyId: string
  slot: Date
  /** `queued` (this replica fired the run), `taken` (another did), or `warning` ahead of a slot. */
  outcome: 'queued' | 'taken' | 'warning'
  runId: string | null
}

const MINUTE = 60_000

/**
 * Retention schedules (UTC cron on each enabled policy). Each replica ticks once a minute; a due
 * slot becomes a run by inserting (policy, slot) into retention_runs, which is unique, so only one
 * replica's INSERT wins and queues the job. `warnBeforeMinutes` ahead of a slot, a warning job is
 * queued once per (policy, slot) in the same way.
 */
export class RetentionScheduler extends MinuteSchedule<FiredPolicySlot> {
  private readonly crons = new Map<string, Cron>()

  constructor(
    private readonly pool: pg.Pool,
    private readonly service: RetentionService,
    private readonly warnBeforeMinutes: number,
    log: ScheduleLogger,
    now?: () => Date,
  ) {
    super(log, 'retention schedule', now)
  }

  protected async fireMinute(slot: Date, now: Date): Promise<FiredPolicySlot[]> {
    const fired: FiredPolicySlot[] = []
    const policies = await scheduledPolicies(this.pool)
    for (const policy of policies) {
      const cron = this.cronOf(policy)
      if (!cron) continue
      if (cron.matches(slot)) fired.push(await this.fire(policy, slot))
      // Warnings look ahead once per tick, from the current minute.
      if (slot.getTime() === floorMinute(now.getTime()) && this.warnBeforeMinutes > 0) {
        const upcoming = nextSlot(cron, slot, this.warnBeforeMinutes)
        if (upcoming) {
          const warned = await this.warn(policy, upcoming)
          if (warned) fired.push(warned)
        }
      }
    }
    return fired
  }

  private cronOf(policy: PolicyRow): Cron | undefined {
    const key = `${policy.id}:${policy.schedule}`
    let cron = this.crons.get(key)
    if (!cron && policy.schedule) {
      try {
        cron = parseCron(policy.schedule)
        this.crons.set(key, cron)
      } catch (err) {
        // Validated when saved; a bad one (from an older version) is skipped, loudly.
        this.log.warn({ err, policyId: policy.id }, 'retention policy schedule does not parse')
      }
    }
    return cron
  }

  private async fire(policy: PolicyRow, slot: Date): Promise<FiredPolicySlot> {
    return withTransaction(this.pool, async (client) => {
      const run = await insertRun(client, {
        policyId: policy.id,
        policyVersion: policy.version,
        kind: 'run',
        trigger: 'schedule',
        state: 'queued',
        requestedBy: 'schedule',
        slot,
      })
      if (!run) return { policyId: policy.id, slot, outcome: 'taken', runId: null }
      await this.service.enqueue(client, run)
      this.log.info({ policyId: policy.id, slot, runId: run.id }, 'scheduled retention run queued')
      return { policyId: policy.id, slot, outcome: 'queued', runId: run.id }
    })
  }

  private async warn(policy: PolicyRow, slot: Date): Promise<FiredPolicySlot | undefined> {
    return withTransaction(this.pool, async (client) => {
      if (!(await claimWarning(client, policy.id, slot))) return undefined
      await enqueueJob(client, {
        kind: RETENTION_WARN,
        payload: { policyId: policy.id, slot: slot.toISOString() },
        uniqueKey: `retention-warn:${policy.id}:${slot.toISOString()}`,
        maxAttempts: 3,
      })
      return { policyId: policy.id, slot, outcome: 'warning', runId: null }
    })
  }
}

/** The first slot of `cron` after `from`, within `minutes`; undefined if none. */
export function nextSlot(cron: Cron, from: Date, minutes: number): Date | undefined {
  for (let i = 1; i <= minutes; i++) {
    const at = new Date(from.getTime() + i * MINUTE)
    if (cron.matches(at)) return at
  }
  return undefined
}
