import fp from 'fastify-plugin'
import { GcScheduler } from './scheduler.js'
import { GcService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    gc: GcService
    gcScheduler: GcScheduler
  }
}

export interface GcPluginOptions {
  /** Run the cron timer in this process (every replica may: each slot fires once). */
  schedules: boolean
}

/**
 * GC runs: the service behind the routes and resolvers, and the schedule timer. A bad cron
 * expression stops the app from starting, naming the key.
 */
export default fp<GcPluginOptions>(
  async (app, { schedules }) => {
    app.decorate('gc', new GcService(app.db, app.registries))
    const scheduler = new GcScheduler(app.db, app.registries, app.log)
    app.decorate('gcScheduler', scheduler)
    if (schedules) {
      app.addHook('onReady', async () => scheduler.start())
      app.addHook('onClose', async () => scheduler.stop())
    }
  },
  { name: 'gc', dependencies: ['db', 'registries'] },
)
