import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { auditGraphql } from './graphql.js'
import { auditRoutes } from './routes.js'
import { AuditService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditService
  }
}

/**
 * Reading the audit log over REST and GraphQL (writing it is a function every feature calls inside
 * its own transactions, src/audit/writer.ts). Who may read a request's events is the deletions
 * feature's to say.
 */
export default fp<FeatureOptions>(
  async (app, { config }) => {
    app.decorate(
      'audit',
      new AuditService(app.db, config.governance, (principal, id) => app.deletions.isVisible(principal, id)),
    )
    await app.register(auditRoutes)
    extendGraph(
      app,
      auditGraphql(() => app.audit),
    )
  },
  { name: 'audit', dependencies: ['db', 'graphql', 'deletions'] },
)
