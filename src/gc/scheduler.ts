import type pg from 'pg'
import { withTransaction } from '../db/transaction.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { type Cron, parseCron } from './cron.js'
import { enqueueRun, systemActor } from './queue.js'
import { activeRun, claimSlot, insertRun, setSlotOutcome } from './sql.js'

const MINUTE = 60_000
/** A replica that was away (paused, restarting) fires slots it missed up to this far back. */
const CATCH_UP_MINUTES = 5

interface Logger {
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
}

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
export class GcScheduler {
  private readonly schedules: { registry: string; cron: Cron }[] = []
  private lastChecked: number
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly pool: pg.Pool,
    registries: RegistrySet,
    private readonly log: Logger,
    now: Date = new Date(),
  ) {
    registries.list().forEach(({ config }, index) => {
      const source = config.gc?.schedule
      if (!source) return
      try {
        this.schedules.push({ registry: config.name, cron: parseCron(source) })
      } catch (err) {
        throw new Error(`registries[${index}].gc.schedule: ${(err as Error).message}`)
      }
    })
    // The current minute counts as not yet checked: a replica starting mid-minute fires its slot.
    this.lastChecked = floorMinute(now.getTime()) - MINUTE
  }

  get scheduled(): number {
    return this.schedules.length
  }

  start(): void {
    if (this.schedules.length === 0 || this.timer) return
    const next = () => {
      const wait = floorMinute(Date.now()) + MINUTE + 1000 - Date.now()
      this.timer = setTimeout(() => {
        this.ticking = this.tick().catch((err: unknown) => this.log.warn({ err }, 'GC schedule tick failed'))
        next()
      }, wait)
      this.timer.unref()
    }
    next()
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.ticking
  }

  /** Fires every slot due since the last tick (at most CATCH_UP_MINUTES back), up to `now`. */
  async tick(now: Date = new Date()): Promise<FiredSlot[]> {
    const until = floorMinute(now.getTime())
    const from = Math.max(this.lastChecked + MINUTE, until - (CATCH_UP_MINUTES - 1) * MINUTE)
    const fired: FiredSlot[] = []
    for (let at = from; at <= until; at += MINUTE) {
      const slot = new Date(at)
      for (const { registry, cron } of this.schedules) {
        if (cron.matches(slot)) fired.push(await this.fire(registry, slot))
      }
    }
    this.lastChecked = Math.max(this.lastChecked, until)
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

function floorMinute(ms: number): number {
  return Math.floor(ms / MINUTE) * MINUTE
}
