import { intervalMs } from './config-schema.js'
import type { UsageService } from './service.js'

interface SchedulerLogger {
  warn(obj: object, msg?: string): void
}

/**
 * Syncs each source once per `refreshIntervalMs`. Time is cut into slots of the interval (slot n
 * starts at n × interval since the epoch); every replica enqueues the current slot's sync job with
 * the key `usage-sync:<source>:<n>`, and the queue's unique key lets only the first one in. A
 * replica starting mid-slot enqueues that slot at once, so a fresh deployment syncs without
 * waiting an interval (a no-op when another replica already did).
 */
export class UsageScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private stopped = false

  constructor(
    private readonly service: UsageService,
    private readonly log: SchedulerLogger,
  ) {}

  start(): void {
    this.stopped = false
    for (const source of this.service.sources) this.fire(source.name, intervalMs(source.refreshIntervalMs))
  }

  stop(): void {
    this.stopped = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }

  private fire(name: string, interval: number): void {
    if (this.stopped) return
    const slot = Math.floor(Date.now() / interval)
    this.service
      .enqueueSync(this.service.pool, name, slot)
      .catch((err: unknown) => this.log.warn({ err, source: name }, 'usage sync could not be queued'))
    const wait = (slot + 1) * interval - Date.now() + 50
    const timer = setTimeout(() => this.fire(name, interval), Math.max(wait, 50))
    timer.unref()
    this.timers.set(name, timer)
  }
}
