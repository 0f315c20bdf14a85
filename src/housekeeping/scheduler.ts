import type pg from 'pg'
import { enqueueJob } from '../jobs/index.js'
import { MinuteSchedule, type ScheduleLogger } from '../jobs/minute-schedule.js'
import { HOUSEKEEPING_PURGE } from './service.js'

/**
 * Queues the purge job every `everyMinutes` (minutes since the epoch, UTC). Every replica runs
 * the timer; the job's unique key is its slot, so each slot is queued once however many replicas
 * there are, and whichever worker is free runs it.
 */
export class HousekeepingSchedule extends MinuteSchedule<string> {
  constructor(
    private readonly pool: pg.Pool,
    private readonly everyMinutes: number,
    log: ScheduleLogger,
    now?: () => Date,
  ) {
    super(log, 'housekeeping schedule', now)
  }

  /** The id of the purge job queued for the slot, if this replica queued it. */
  protected async fireMinute(slot: Date): Promise<string[]> {
    if (Math.floor(slot.getTime() / 60_000) % this.everyMinutes !== 0) return []
    const { job, created } = await enqueueJob(this.pool, {
      kind: HOUSEKEEPING_PURGE,
      payload: {},
      uniqueKey: `${HOUSEKEEPING_PURGE}:${slot.toISOString()}`,
      maxAttempts: 3,
    })
    return created ? [job.id] : []
  }
}
