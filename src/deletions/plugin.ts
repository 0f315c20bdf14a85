import fp from 'fastify-plugin'
import { AuditService } from '../audit/service.js'
import type { Config } from '../config.js'
import { HoldsService } from '../governance/holds-service.js'
import { DeletionService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    deletions: DeletionService
    holds: HoldsService
    audit: AuditService
  }
}

/** How often each replica looks for requests whose approval window closed. */
const EXPIRY_SWEEP_MS = 60_000

export default fp<{ config: Config }>(
  async (app, { config }) => {
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
    app.decorate('holds', new HoldsService(app.db))
    app.decorate(
      'audit',
      new AuditService(app.db, config.governance, (principal, id) => service.isVisible(principal, id)),
    )
    // Every replica sweeps; the UPDATE locks with SKIP LOCKED, so each request expires once.
    const timer = setInterval(() => {
      service.expireOverdue().catch((err) => app.log.warn({ err }, 'expiry sweep failed'))
    }, EXPIRY_SWEEP_MS)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'deletions', dependencies: ['db', 'registries', 'notifications', 'usage'] },
)
