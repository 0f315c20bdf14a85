import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import { Type } from 'typebox'
import { type FeatureOptions, runsInBackground } from '../app-options.js'
import { errors } from '../errors.js'
import { extendGraph } from '../graphql/plugin.js'
import { NonRetryableJobError } from '../jobs/index.js'
import { secretEnv } from '../lib/secrets.js'
import { usageConfigProblems } from './config-schema.js'
import { usageGraphql } from './graphql.js'
import { usageRoutes } from './routes.js'
import { UsageScheduler } from './scheduler.js'
import { type SourceView, USAGE_SYNC, UsageService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    usage: UsageService
    usageScheduler: UsageScheduler
  }
}

/**
 * In-use awareness: the service deletion plans and retention ask, the sync schedule, and metrics
 * per source. A source with a missing section, an unknown registry or an unset token variable
 * stops the start, naming the key.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides }) => {
    const env = secretEnv(overrides.env)
    // The sync timer runs where the worker runs (every such replica may: each slot syncs once).
    const schedules = runsInBackground(overrides) && config.worker
    const problems = usageConfigProblems(
      config.usage,
      config.registries.map((r) => r.name),
    )
    config.usage.sources.forEach((source, i) => {
      const tokenEnv = source.inventory?.tokenEnv
      if (tokenEnv && !env[tokenEnv])
        problems.push(
          `usage.sources[${i}].inventory.tokenEnv: the environment variable ${tokenEnv} is not set`,
        )
    })
    if (problems.length > 0) throw new Error(`Invalid usage configuration:\n  - ${problems.join('\n  - ')}`)

    // Syncs run in whichever replica's worker claims them: this counter is per process; the gauges
    // below read the sources' status from Postgres, so every replica reports the same.
    const syncs = new Counter({
      name: 'regent_usage_syncs_total',
      help: 'Usage source syncs run by this process, by source and outcome (succeeded, failed, superseded)',
      labelNames: ['source', 'outcome'] as const,
      registers: [app.metrics],
    })
    const service = new UsageService(app.db, config.usage, config.registries, {
      env,
      observe: (result) => syncs.inc({ source: result.source, outcome: result.outcome }),
      tagsOf: async (registry, repository, digest) => {
        const snapshot = await app.browse.snapshotRepository(registry, repository, {
          fresh: true,
          bodies: false,
        })
        return snapshot.tagsByDigest.get(digest) ?? []
      },
    })
    app.decorate('usage', service)
    // Browsing shows what is in use: per tag, what runs or names its digest, or names that tag.
    app.browse.useUsage(async (registry, repository, tags) => {
      const out = new Map<string, { status: 'in-use' | 'unknown'; reason: string }>()
      if (config.usage.sources.length === 0 || tags.length === 0) return out
      const verdicts = await service.usageOf(
        registry,
        repository,
        tags.map(({ tag, digest }) => ({ digest, tags: [tag] })),
      )
      for (const { tag, digest } of tags) {
        const verdict = verdicts.get(digest)
        if (!verdict) continue
        const where = verdict.where.filter((l) => l.by !== 'tag' || l.reference === tag)
        const own = {
          ...verdict,
          where,
          status: verdict.status === 'in-use' && where.length === 0 ? 'unused' : verdict.status,
        } as typeof verdict
        if (service.countsAsInUse(own))
          out.set(tag, {
            status: own.status === 'unknown' ? 'unknown' : 'in-use',
            reason: service.describe(own),
          })
      }
      return out
    })

    if (config.usage.sources.length > 0) {
      // The gauges read the sources' status from Postgres at scrape time, one query per scrape.
      let cached: { at: number; views: Promise<SourceView[]> } | undefined
      const views = (): Promise<SourceView[]> => {
        if (!cached || Date.now() - cached.at > 1000)
          cached = { at: Date.now(), views: service.sourceViews().catch(() => []) }
        return cached.views
      }
      const gauge = (name: string, help: string, value: (view: SourceView) => number) =>
        new Gauge({
          name,
          help,
          labelNames: ['source'] as const,
          registers: [app.metrics],
          async collect() {
            for (const view of await views()) this.set({ source: view.name }, value(view))
          },
        })
      gauge(
        'regent_usage_source_last_success_timestamp_seconds',
        'Start of the last successful sync of each usage source (0: never)',
        (v) => (v.lastSuccessAt ? Date.parse(v.lastSuccessAt) / 1000 : 0),
      )
      gauge('regent_usage_source_stale', '1 while a usage source is past its staleness limit', (v) =>
        v.stale ? 1 : 0,
      )
      gauge(
        'regent_usage_source_sync_duration_seconds',
        'Duration of the last sync of each usage source',
        (v) => (v.lastSyncDurationMs ?? 0) / 1000,
      )
      gauge(
        'regent_usage_source_references',
        'References stored by the last successful sync of each usage source',
        (v) => v.counts.references ?? 0,
      )
      gauge('regent_usage_source_last_sync_failed', '1 when the last sync of a usage source failed', (v) =>
        v.lastOutcome === 'failed' ? 1 : 0,
      )
    }

    app.jobs.define({
      kind: USAGE_SYNC,
      payload: Type.Object({ source: Type.String() }),
      run: async ({ source }, _job, ctx) => {
        const result = await service.sync(source, ctx.signal)
        // Recorded on the source already; the next slot is the retry.
        if (result.outcome === 'failed') throw new NonRetryableJobError(result.error ?? 'the sync failed')
        return result
      },
    })
    const scheduler = new UsageScheduler(service, app.log)
    app.decorate('usageScheduler', scheduler)
    if (schedules) {
      app.addHook('onReady', async () => scheduler.start())
      app.addHook('preClose', async () => scheduler.stop())
    }
    await app.register(usageRoutes)
    extendGraph(
      app,
      usageGraphql(
        () => app.usage,
        (message) => new errors.VALIDATION(message),
      ),
    )
  },
  { name: 'usage', dependencies: ['db', 'metrics', 'registries', 'jobs', 'graphql'] },
)
