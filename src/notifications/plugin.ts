import fp from 'fastify-plugin'
import { Agent } from 'undici'
import type { FeatureOptions } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { secretEnv } from '../lib/secrets.js'
import { deliveryJob } from './deliver.js'
import { webhookProblems } from './events.js'
import { notificationsGraphql } from './graphql.js'
import { Notifier } from './notify.js'
import { notificationRoutes } from './routes.js'
import { NotificationService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Emits events to the configured webhooks inside a caller's transaction. */
    notifier: Notifier
    notifications: NotificationService
  }
}

/**
 * Outbound webhooks: checks the webhook config at boot (unique names, secrets present), reads the
 * secrets once, and holds one undici Agent for every delivery, closed with the app.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const env = secretEnv(overrides.env)
    const { notifications } = config
    const problems = webhookProblems(notifications.webhooks, env)
    if (problems.length > 0)
      throw new Error(`Invalid notifications config:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    const secrets = new Map<string, string>()
    for (const webhook of notifications.webhooks)
      if (webhook.secretEnv) secrets.set(webhook.name, env[webhook.secretEnv]!)

    const dispatcher = new Agent({
      connect: { timeout: notifications.timeoutMs },
      headersTimeout: notifications.timeoutMs,
      bodyTimeout: notifications.timeoutMs,
    })
    app.decorate('notifier', new Notifier(notifications))
    app.decorate('notifications', new NotificationService(app.db, notifications))
    app.jobs.define(
      deliveryJob({
        pool: app.db,
        webhooks: new Map(notifications.webhooks.map((w) => [w.name, w])),
        secrets,
        dispatcher,
        timeoutMs: notifications.timeoutMs,
        source: notifications.source,
      }),
    )
    app.addHook('onClose', () => dispatcher.close())
    await app.register(notificationRoutes)
    extendGraph(
      app,
      notificationsGraphql(() => app.notifications),
    )
  },
  { name: 'notifications', dependencies: ['db', 'jobs', 'graphql'] },
)
