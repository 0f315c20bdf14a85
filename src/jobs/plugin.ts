import fp from 'fastify-plugin'
import type pg from 'pg'
import type { Config } from '../config.js'
import type { Job } from './types.js'
import { type JobHandler, Worker } from './worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    worker: Worker | null
  }
}

export interface WorkerPluginOptions {
  config: Config
  /** Every job kind this process can run, from the features that own them. */
  handlers: Record<string, JobHandler>
  /** Runs in the transaction that fails a job for good; features write their audit event here. */
  onFailed?: (client: pg.PoolClient, job: Job) => Promise<void>
}

/**
 * The job worker, in this process unless `worker` is off (REGENT_WORKER=off): API-only and
 * worker-only replicas can share one database. It starts once the app is ready and stops before
 * the pool closes: no new claims, running jobs finish or are released within the grace period.
 */
export default fp<WorkerPluginOptions>(
  async (app, { config, handlers, onFailed }) => {
    if (!config.worker) {
      app.decorate('worker', null)
      return
    }
    const worker = new Worker({
      pool: app.db,
      handlers,
      config: config.jobs,
      log: app.log,
      ...(onFailed ? { onFailed } : {}),
    })
    app.decorate('worker', worker)
    app.addHook('onReady', async () => worker.start())
    app.addHook('preClose', async () => worker.stop())
  },
  { name: 'worker', dependencies: ['db'] },
)
