import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import { Type } from 'typebox'
import { type FeatureOptions, runsInBackground } from '../app-options.js'
import { HousekeepingSchedule } from './scheduler.js'
import { HOUSEKEEPING_PURGE, Housekeeping } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    housekeeping: Housekeeping
    housekeepingSchedule: HousekeepingSchedule
  }
}

/**
 * Purging of the operational tables: the service the purge job runs, the job, and the timer that
 * queues it (every replica may run the timer: each slot is queued once).
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
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
    app.jobs.define({
      kind: HOUSEKEEPING_PURGE,
      payload: Type.Object({}),
      run: () => app.housekeeping.purge(),
    })
    const schedule = new HousekeepingSchedule(
      app.db,
      config.housekeeping.everyMinutes,
      app.log,
      overrides.now,
    )
    app.decorate('housekeepingSchedule', schedule)
    if (runsInBackground(overrides)) {
      app.addHook('onReady', async () => schedule.start())
      app.addHook('onClose', async () => schedule.stop())
    }
  },
  { name: 'housekeeping', dependencies: ['db', 'metrics', 'jobs'] },
)
