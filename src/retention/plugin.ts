import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { type FeatureOptions, runsInBackground } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { jsonObject } from '../notifications/index.js'
import { recordSightings, repositoryActivity } from '../registry-events/index.js'
import { retentionGraphql } from './graphql.js'
import { retentionRoutes } from './routes.js'
import { RETENTION_RUN } from './runs.js'
import { RETENTION_WARN, RetentionScheduler } from './scheduler.js'
import { parsePolicyInput } from './schemas.js'
import { RetentionService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    retention: RetentionService
    retentionScheduler: RetentionScheduler
  }
}

/**
 * Retention policies: the service behind routes, resolvers and its two jobs (a run, and the warning
 * before a scheduled run), and the schedule timer (every replica may run it: each slot fires once).
 * Evaluations and the schedule read the time from `overrides.now`.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const now = overrides.now ?? (() => new Date())
    const service = new RetentionService({
      pool: app.db,
      registries: app.registries,
      browse: app.browse,
      deletions: app.deletions,
      governance: config.governance,
      config: { ...config.retention, fanOut: config.browse.concurrency },
      activity: {
        repositoryActivity: (registry, repository) => repositoryActivity(app.db, registry, repository),
        recordSightings: (registry, repository, tags) => recordSightings(app.db, registry, repository, tags),
      },
      notifier: (client, event) => app.notifier.notify(client, { ...event, data: jsonObject(event.data) }),
      usage: app.usage,
      now,
    })
    app.decorate('retention', service)
    app.jobs.define({
      kind: RETENTION_RUN,
      payload: Type.Object({ runId: Type.String() }),
      run: ({ runId }) => service.executeRun(runId),
      onFailed: (client, { runId }, job) => service.failRun(client, runId, job.lastError),
      visibleTo: (principal, { runId }) => service.runVisibleTo(principal, runId),
    })
    app.jobs.define({
      kind: RETENTION_WARN,
      payload: Type.Object({ policyId: Type.String(), slot: Type.String() }),
      run: ({ policyId, slot }) => service.warn(policyId, new Date(slot)),
      visibleTo: (principal, { policyId }) => service.policyVisibleTo(principal, policyId),
    })
    const scheduler = new RetentionScheduler(
      app.db,
      service,
      config.retention.warnBeforeMinutes,
      app.log,
      now,
    )
    app.decorate('retentionScheduler', scheduler)
    if (runsInBackground(overrides)) {
      app.addHook('onReady', async () => scheduler.start())
      app.addHook('onClose', async () => scheduler.stop())
    }
    await app.register(retentionRoutes)
    extendGraph(
      app,
      retentionGraphql(() => app.retention, parsePolicyInput),
    )
  },
  {
    name: 'retention',
    dependencies: ['db', 'registries', 'deletions', 'notifications', 'usage', 'jobs', 'graphql'],
  },
)
