import fp from 'fastify-plugin'
import { type FeatureOptions, runsInBackground } from '../app-options.js'
import { JobKinds } from './kinds.js'
import { jobRoutes } from './routes.js'
import { Worker } from './worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Features define their job kinds here while they register. */
    jobs: JobKinds
    /** The worker of this process, once the app is ready; null where none runs. */
    worker: Worker | null
  }
}

/**
 * The job queue: the kinds features define, GET /v1/jobs/{id}, and the worker of this process
 * unless `worker` is off (REGENT_WORKER=off): API-only and worker-only replicas share one database.
 * The worker starts once the app is ready, when every feature has defined its kinds, and stops
 * before the pool closes: no new claims, running jobs finish or are released within the grace
 * period.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const kinds = new JobKinds()
    app.decorate('jobs', kinds)
    app.decorate('worker', null)
    await app.register(jobRoutes, { visible: (principal, job) => kinds.visible(principal, job) })
    if (!config.worker || !runsInBackground(overrides)) return
    app.addHook('onReady', async () => {
      const worker = new Worker({
        pool: app.db,
        handlers: kinds.handlers(),
        config: config.jobs,
        log: app.log,
        onFailed: (client, job) => kinds.failed(client, job),
      })
      app.worker = worker
      await worker.start()
    })
    app.addHook('preClose', async () => app.worker?.stop())
  },
  { name: 'jobs', dependencies: ['db'] },
)
