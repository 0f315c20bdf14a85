import fp from 'fastify-plugin'
import { type FeatureOptions, runsInBackground } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { executionJob } from './execute.js'
import { deletionsGraphql } from './graphql.js'
import { deletionRoutes } from './routes.js'
import { DeletionService } from './service.js'
import { deletionUpdates, notifyDeletionChanged } from './updates.js'

declare module 'fastify' {
  interface FastifyInstance {
    deletions: DeletionService
  }
}

/** How often each replica looks for requests whose approval window closed. */
const EXPIRY_SWEEP_MS = 60_000

/**
 * Governed deletions: requests and their plans, approvals, the execution job, restore, REST and
 * GraphQL, and the bridge that streams a request's progress to subscribers on every replica.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const service = new DeletionService(
      app.db,
      app.registries,
      app.browse,
      config.governance,
      { maxAttempts: config.deletions.maxAttempts },
      app.notifier,
      app.usage,
    )
    app.decorate('deletions', service)
    app.jobs.define(
      executionJob({
        pool: app.db,
        registries: app.registries,
        browse: app.browse,
        governance: config.governance,
        repositoryConcurrency: config.deletions.repositoryConcurrency,
        waveSize: config.deletions.waveSize,
        usage: app.usage,
        gates: service.gates,
        ...(overrides.executionHooks ? { hooks: overrides.executionHooks } : {}),
        notify: (id) => notifyDeletionChanged(app.db, id),
        announce: (client, row, type) => service.announce(client, row, type),
        visibleTo: (principal, id) => service.isVisible(principal, id),
      }),
    )
    await app.register(deletionRoutes)
    extendGraph(
      app,
      deletionsGraphql(() => app.deletions),
    )
    if (runsInBackground(overrides)) await app.register(deletionUpdates)

    // Every replica sweeps; the UPDATE locks with SKIP LOCKED, so each request expires once.
    const timer = setInterval(() => {
      service.expireOverdue().catch((err) => app.log.warn({ err }, 'expiry sweep failed'))
    }, EXPIRY_SWEEP_MS)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'deletions', dependencies: ['db', 'registries', 'notifications', 'usage', 'jobs', 'graphql'] },
)
