import { Pool } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { MANIFEST_ACCEPT, RegistryClient } from '../src/oci/index.js'
import { signToken } from '../test/helper.js'
import { inParallel, pushImage } from '../test/helpers/fixtures.js'
import { registryConfig } from '../test/helpers/registry.js'
import { load } from './load-client.js'
import { countRegistryCalls, headEveryTag, log, runBench, timed } from './support.js'

/**
 * bench/browse: every tag of 50 repositories × 40 tags with its details, through Regent's
 * `GET …/tags` (cold, then warm) against the same information fetched straight from the registry
 * (tag list, then HEAD + manifest + config per tag) at the same concurrency.
 */
const REPOSITORIES = Number(process.env.BENCH_REPOSITORIES ?? 50)
const TAGS = Number(process.env.BENCH_TAGS ?? 40)
const CONCURRENCY = 8

runBench(async ({ db, registry }) => {
  const calls = countRegistryCalls(registry)
  const pusher = new RegistryClient(registryConfig(registry, { maxConcurrency: 16 }))
  const repos = Array.from({ length: REPOSITORIES }, (_, i) => `bench/repo-${String(i).padStart(2, '0')}`)
  const jobs = repos.flatMap((repository) =>
    Array.from({ length: TAGS }, (_, j) => ({ repository, tag: `v${j}` })),
  )
  const pushed = await timed(() =>
    inParallel(jobs, 16, ({ repository, tag }) => pushImage(pusher, repository, { tags: [tag], layers: 2 })),
  )
  await pusher.close()
  log(`pushed ${jobs.length} images in ${(pushed.ms / 1000).toFixed(1)} s`)

  const token = signToken({ sub: 'bench', roles: ['viewer'] })
  const startRegent = async (tagTtlMs: number) => {
    const config = loadConfig(
      {},
      {
        databaseUrl: db.url,
        logLevel: 'silent',
        auth: { jwtSecret: 'test-secret-0123456789abcdef0123456789abcdef' },
        registries: [registryConfig(registry, { name: 'bench', maxConcurrency: CONCURRENCY })],
        browse: { concurrency: CONCURRENCY, tagTtlMs },
      },
    )
    const app = await buildApp(config)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const pool = new Pool(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`, {
      connections: 4,
    })
    return {
      pool,
      url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
      close: async () => {
        await pool.close()
        await app.close()
      },
    }
  }

  // Regent: one request per repository, one repository at a time; Regent fans out to the
  // registry with `browse.concurrency` calls in flight, the same as the direct fetch below.
  const viaRegent = (regent: Pool) => async () => {
    let tags = 0
    for (const repository of repos) {
      const res = await regent.request({
        method: 'GET',
        path: `/v1/registries/bench/repositories/${encodeURIComponent(repository)}/tags?limit=1000`,
        headers: { authorization: `Bearer ${token}` },
      })
      const body = (await res.body.json()) as { items: unknown[] }
      if (res.statusCode !== 200) throw new Error(`Regent answered ${res.statusCode}`)
      tags += body.items.length
    }
    return tags
  }

  const direct = new Pool(registry.url, { connections: CONCURRENCY })
  const straight = () =>
    headEveryTag(direct, repos, CONCURRENCY, async (repository, digest) => {
      const manifestRes = await direct.request({
        method: 'GET',
        path: `/v2/${repository}/manifests/${digest}`,
        headers: { accept: MANIFEST_ACCEPT },
      })
      const manifest = (await manifestRes.body.json()) as { config: { digest: string } }
      const configRes = await direct.request({
        method: 'GET',
        path: `/v2/${repository}/blobs/${manifest.config.digest}`,
      })
      await configRes.body.json()
    })

  const directRun = await timed(straight)
  // A TTL longer than one pass: "warm" means every answer is fresh in the caches.
  const first = await startRegent(10 * 60_000)
  const cold = await timed(viaRegent(first.pool))
  const warm = await timed(viaRegent(first.pool))
  await first.close()
  // A new process with the default TTL: memory is empty, Postgres still has every manifest and
  // config, so each tag costs one HEAD to re-resolve it.
  const restarted = await startRegent(5000)
  const revalidated = await timed(viaRegent(restarted.pool))
  await restarted.close()
  const directAgain = await timed(straight)
  const directMs = (directRun.ms + directAgain.ms) / 2

  if (new Set([directRun.result, cold.result, warm.result, revalidated.result]).size !== 1) {
    throw new Error('the runs did not see the same number of tags')
  }
  log(`tags: ${cold.result} in ${REPOSITORIES} repositories, concurrency ${CONCURRENCY}`)
  log(`direct from the registry (mean of 2): ${directMs.toFixed(0)} ms`)
  log(`regent cold:                          ${cold.ms.toFixed(0)} ms`)
  log(`regent warm (tag answers fresh):       ${warm.ms.toFixed(0)} ms`)
  log(`regent after restart (Postgres cache, every tag re-resolved by HEAD): ${revalidated.ms.toFixed(0)} ms`)
  log(`ratio cold / direct:  ${(cold.ms / directMs).toFixed(2)}  (goal <= 1.5)`)
  log(`ratio direct / warm:  ${(directMs / warm.ms).toFixed(2)}  (goal >= 5)`)
  log(`ratio direct / after restart: ${(directMs / revalidated.ms).toFixed(2)}`)
  await direct.close()

  // Under load: many clients browsing at once, with the default tag TTL (answers expire and are
  // fetched again while the load runs). One warm repository, then 20 repositories round-robin.
  const loaded = await startRegent(5000)
  const paths = (count: number) =>
    repos
      .slice(0, count)
      .map((r) => `/v1/registries/bench/repositories/${encodeURIComponent(r)}/tags?limit=1000`)
  log(`\nunder load (${LOAD_SECONDS} s each, default tag TTL 5 s, registry maxConcurrency ${CONCURRENCY}):`)
  for (const repositories of [1, 20]) {
    await load({ url: loaded.url, token, paths: paths(repositories), connections: 5, ms: 1000 }) // warm the caches
    const results = []
    for (const connections of [50, 200]) {
      const before = calls.total
      // The most in flight during this load alone, not the pushes' or an earlier phase's.
      calls.maxInFlight = calls.inFlight
      const r = await load({
        url: loaded.url,
        token,
        paths: paths(repositories),
        connections,
        ms: LOAD_SECONDS * 1000,
      })
      results.push(r)
      log(
        `  ${String(repositories).padStart(2)} repositories, ${String(connections).padStart(3)} connections: ${(r.requests / (r.ms / 1000)).toFixed(0)} req/s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, ${r.timeouts} timeouts, ${r.errors} errors, ${((calls.total - before) / r.requests).toFixed(2)} registry calls/request, at most ${calls.maxInFlight} registry calls in flight`,
      )
    }
    log(
      `  ratio throughput 200 / 50 connections: ${(results[1]!.requests / results[1]!.ms / (results[0]!.requests / results[0]!.ms)).toFixed(2)}  (goal >= 1)`,
    )
  }
  await loaded.close()
})

const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 10)
