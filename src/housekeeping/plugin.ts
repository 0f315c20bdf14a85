import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import type { Config } from '../config.js'
import { HousekeepingSchedule } from './scheduler.js'
import { Housekeeping } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    housekeeping: Housekeeping
    housekeepingSchedule: HousekeepingSchedule
  }
}

export interface HousekeepingPluginOptions {
  config: Config
  /** Run the timer that queues the purge job in this process (every replica may). */
  schedules: boolean
}

/** Purging of the operational tables: the service the purge job runs, and its schedule. */
export default fp<HousekeepingPluginOptions>(
  async (app, { config, schedules }) => {
    const purged = new Counter({
      name: 'regent_housekeeping_purged_rows_total',
      help: 'Rows the housekeeping purge deleted, by table',
      labelNames: ['table'] as const,
      registers: [app.metrics],
    })
    app.decorate(
      'housekeeping',
      new Housekeeping(app.db, config.housekeeping, config.browse.cacheMemoryBytes, app.log, purged),
    )
    const schedule = new HousekeepingSchedule(app.db, config.housekeeping.everyMinutes, app.log)
    app.decorate('housekeepingSchedule', schedule)
    if (schedules) {
      app.addHook('onReady', async () => schedule.start())
      app.addHook('onClose', async () => schedule.stop())
    }
  },
  { name: 'housekeeping', dependencies: ['db', 'metrics'] },
)
