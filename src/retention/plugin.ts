import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { jsonObject } from '../notifications/index.js'
import { recordSightings, repositoryActivity } from '../registry-events/index.js'
import { RetentionScheduler } from './scheduler.js'
import { RetentionService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    retention: RetentionService
    retentionScheduler: RetentionScheduler
  }
}

export interface RetentionPluginOptions {
  config: Config
  /** Run the schedule timer in this process (every replica may: each slot fires once). */
  schedules: boolean
}

/** Retention policies: the service behind routes, resolvers and jobs, and the schedule timer. */
export default fp<RetentionPluginOptions>(
  async (app, { config, schedules }) => {
    const service = new RetentionService(
      app.db,
      app.registries,
      app.browse,
      app.deletions,
      config.governance,
      { ...config.retention, fanOut: config.browse.concurrency },
      {
        repositoryActivity: (registry, repository) => repositoryActivity(app.db, registry, repository),
        recordSightings: (registry, repository, tags) => recordSightings(app.db, registry, repository, tags),
      },
      (client, event) => app.notifier.notify(client, { ...event, data: jsonObject(event.data) }),
      app.usage,
    )
    app.decorate('retention', service)
    const scheduler = new RetentionScheduler(app.db, service, config.retention.warnBeforeMinutes, app.log)
    app.decorate('retentionScheduler', scheduler)
    if (schedules) {
      app.addHook('onReady', async () => scheduler.start())
      app.addHook('onClose', async () => scheduler.stop())
    }
  },
  { name: 'retention', dependencies: ['db', 'registries', 'deletions', 'notifications', 'usage'] },
)
