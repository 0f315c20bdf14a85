import type pg from 'pg'
import { withTransaction } from '../db/transaction.js'
import { MinuteSchedule, type ScheduleLogger } from '../jobs/minute-schedule.js'
import { type Cron, parseCron } from '../lib/cron.js'
import { systemActor } from '../lib/system.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { enqueueRun } from './queue.js'
import { activeRun, claimSlot, insertRun, setSlotOutcome } from './sql.js'

export interface FiredSlot {
  registry: string
  slot: Date
  /** `queued`, `skipped: …`, or `taken` when another replica fired it first. */
  outcome: string
  runId: string | null
}

/**
 * Cron schedules (`registries[].gc.schedule`, UTC). Every replica runs this timer once a minute;
 * each due slot is claimed by inserting (registry, slot) into gc_schedule_slots, and only the
 * replica whose INSERT wins queues the run, so a slot fires once however many replicas there are.
 * A slot finding another run queued or running is recorded as skipped: that run collects anyway.
 */
export class GcScheduler extends MinuteSchedule<FiredSlot> {
  private readonly schedules: { registry: string; cron: Cron }[] = []

  constructor(
    private readonly pool: pg.Pool,
    registries: RegistrySet,
    log: ScheduleLogger,
    now?: () => Date,
  ) {
    super(log, 'GC schedule', now)
    registries.list().forEach(({ config }, index) => {
      const source = config.gc?.schedule
      if (!source) return
      try {
        this.schedules.push({ registry: config.name, cron: parseCron(source) })
      } catch (err) {
        throw new Error(`registries[${index}].gc.schedule: ${(err as Error).message}`)
      }
    })
  }

  get scheduled(): number {
    return this.schedules.length
  }

  protected override get active(): boolean {
    return this.schedules.length > 0
  }

  protected async fireMinute(slot: Date): Promise<FiredSlot[]> {
    const fired: FiredSlot[] = []
    for (const { registry, cron } of this.schedules) {
      if (cron.matches(slot)) fired.push(await this.fire(registry, slot))
    }
    return fired
  }

  private async fire(registry: string, slot: Date): Promise<FiredSlot> {
    return withTransaction(this.pool, async (client) => {
      if (!(await claimSlot(client, registry, slot))) return { registry, slot, outcome: 'taken', runId: null }
      const inserted = await insertRun(client, {
        registry,
        trigger: 'schedule',
        requestedBy: 'regent',
        dryRun: false,
        deleteUntagged: false,
      })
      if (inserted) {
        const run = await enqueueRun(client, inserted, systemActor(`gc-schedule-${slot.toISOString()}`), {
          slot: slot.toISOString(),
        })
        await setSlotOutcome(client, registry, slot, { runId: run.id, outcome: 'queued' })
        this.log.info({ registry, slot, runId: run.id }, 'scheduled GC queued')
        return { registry, slot, outcome: 'queued', runId: run.id }
      }
      const active = await activeRun(client, registry)
      const outcome = active ? `skipped: run ${active.id} is ${active.state}` : 'skipped'
      await setSlotOutcome(client, registry, slot, { runId: active?.id ?? null, outcome })
      return { registry, slot, outcome, runId: active?.id ?? null }
    })
  }
}
