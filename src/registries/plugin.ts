import fp from 'fastify-plugin'
import type { FeatureOptions } from '../app-options.js'
import { extendGraph } from '../graphql/plugin.js'
import { secretEnv } from '../lib/secrets.js'
import { BrowseService } from './browse-service.js'
import { ContentCache, TagDigestCache } from './content-cache.js'
import { registriesGraphql } from './graphql.js'
import { RegistrySet } from './registry-set.js'
import { registryRoutes } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    registries: RegistrySet
    browse: BrowseService
  }
}

/** The configured registries, each with its client, and browsing them over REST and GraphQL. */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const registries = new RegistrySet(config.registries, { env: secretEnv(overrides.env), logger: app.log })
    app.decorate('registries', registries)
    const content = new ContentCache(app.db, config.browse.cacheMemoryBytes)
    app.decorate(
      'browse',
      new BrowseService(registries, content, new TagDigestCache(config.browse.tagTtlMs), {
        concurrency: config.browse.concurrency,
        siblingScanLimit: config.browse.siblingScanLimit,
        maxConfigBytes: config.browse.maxConfigBytes,
        probeTimeoutMs: config.browse.probeTimeoutMs,
      }),
    )
    app.addHook('onClose', async () => {
      await content.flush()
      await registries.close()
    })
    await app.register(registryRoutes)
    extendGraph(
      app,
      registriesGraphql(() => app.browse),
    )
  },
  { name: 'registries', dependencies: ['db', 'graphql'] },
)
