const MINUTE = 60_000
/** A replica that was away (paused, restarting) fires slots it missed up to this far back. */
const CATCH_UP_MINUTES = 5

export interface ScheduleLogger {
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
}

/**
 * The timer under the cron schedules (GC, retention): every replica wakes once a minute and hands
 * each minute since its last tick (at most CATCH_UP_MINUTES back) to `fireMinute`, which claims
 * the slots it finds due in Postgres so that a slot fires once however many replicas run.
 */
export abstract class MinuteSchedule<T> {
  private lastChecked: number
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<unknown> = Promise.resolve()

  constructor(
    protected readonly log: ScheduleLogger,
    private readonly what: string,
    /** The time a tick fires up to, unless given (default real time; tests move it). */
    protected readonly now: () => Date = () => new Date(),
  ) {
    // The current minute counts as not yet checked: a replica starting mid-minute fires its slot.
    this.lastChecked = floorMinute(now().getTime()) - MINUTE
  }

  /**
   * Whether there is anything to schedule; a schedule without entries starts no timer. Always, by
   * default: for schedules whose entries can be added while the process runs.
   */
  protected get active(): boolean {
    return true
  }

  /** Fires whatever is due in the minute starting at `slot`. */
  protected abstract fireMinute(slot: Date, now: Date): Promise<T[]>

  start(): void {
    if (!this.active || this.timer) return
    const next = () => {
      const wait = floorMinute(Date.now()) + MINUTE + 1000 - Date.now()
      this.timer = setTimeout(() => {
        this.ticking = this.tick().catch((err: unknown) => this.log.warn({ err }, `${this.what} tick failed`))
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
  async tick(now: Date = this.now()): Promise<T[]> {
    const until = floorMinute(now.getTime())
    const from = Math.max(this.lastChecked + MINUTE, until - (CATCH_UP_MINUTES - 1) * MINUTE)
    const fired: T[] = []
    for (let at = from; at <= until; at += MINUTE) fired.push(...(await this.fireMinute(new Date(at), now)))
    this.lastChecked = Math.max(this.lastChecked, until)
    return fired
  }
}

export function floorMinute(ms: number): number {
  return Math.floor(ms / MINUTE) * MINUTE
}
