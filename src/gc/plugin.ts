import fp from 'fastify-plugin'
import { type FeatureOptions, runsInBackground } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { secretEnv } from '../lib/secrets.js'
import { gcDeletionGate } from './deletion-gate.js'
import { gcGraphql } from './graphql.js'
import { gcJob } from './job.js'
import { gcRoutes } from './routes.js'
import { GcScheduler } from './scheduler.js'
import { GcService } from './service.js'
import { gcUpdates, notifyGcRunChanged } from './updates.js'

declare module 'fastify' {
  interface FastifyInstance {
    gc: GcService
    gcScheduler: GcScheduler
  }
}

/**
 * Garbage collection: the service behind the routes and resolvers, the `gc.run` job, its say in
 * deletions (executions wait while a GC sweeps, and a finished execution schedules one), the
 * schedule timer (every replica may run it: each slot fires once), and the bridge that streams a
 * run's progress. A bad cron expression stops the app from starting, naming the key. The schedule
 * reads the time from `overrides.now`; runs keep to real time, as the job queue that starts them
 * and their leases keep the database's.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const now = overrides.now ?? (() => new Date())
    app.decorate('gc', new GcService(app.db, app.registries))
    app.jobs.define(
      gcJob({
        pool: app.db,
        registries: app.registries,
        env: secretEnv(overrides.env),
        leaseMs: config.jobs.leaseMs,
        renewMs: config.jobs.heartbeatMs,
        pollMs: Math.max(100, Math.min(config.jobs.pollMs, 1000)),
        notify: (id) => notifyGcRunChanged(app.db, id),
        notifier: app.notifier,
      }),
    )
    app.deletions.addGate(
      gcDeletionGate({
        pool: app.db,
        registries: app.registries,
        retryAfterMs: Math.max(250, config.jobs.pollMs),
      }),
    )
    const scheduler = new GcScheduler(app.db, app.registries, app.log, now)
    app.decorate('gcScheduler', scheduler)
    if (runsInBackground(overrides)) {
      app.addHook('onReady', async () => scheduler.start())
      app.addHook('onClose', async () => scheduler.stop())
      await app.register(gcUpdates)
    }
    await app.register(gcRoutes)
    extendGraph(
      app,
      gcGraphql(() => app.gc),
    )
  },
  { name: 'gc', dependencies: ['db', 'registries', 'notifications', 'deletions', 'jobs', 'graphql'] },
)
