import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { BrowseService } from './browse-service.js'
import { ContentCache, TagDigestCache } from './content-cache.js'
import { RegistrySet } from './registry-set.js'

declare module 'fastify' {
  interface FastifyInstance {
    registries: RegistrySet
    browse: BrowseService
  }
}

export interface RegistriesPluginOptions {
  config: Config
  /** Where registry credentials named by `passwordEnv`/`tokenEnv` are read (tests pass their own). */
  env?: Record<string, string | undefined>
}

export default fp<RegistriesPluginOptions>(
  async (app, { config, env }) => {
    const registries = new RegistrySet(config.registries, { ...(env ? { env } : {}), logger: app.log })
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
  },
  { name: 'registries', dependencies: ['db'] },
)
