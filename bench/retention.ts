import { Pool } from 'undici'
import { buildApp } from '../src/app.js'
import { RegistryClient } from '../src/oci/index.js'
import { inParallel, pushImage } from '../test/helpers/fixtures.js'
import { registryConfig } from '../test/helpers/registry.js'
import { benchConfig, headEveryTag, log, runBench, timed } from './support.js'

/**
 * bench/retention: one policy evaluated over 100 repositories × 200 tags (each tag its own
 * image), cold (empty caches: every manifest fetched) and again with the manifests cached, against
 * listing the same tags and their digests straight from the registry (tags/list, then a HEAD per
 * tag) at the same concurrency. Evaluation always re-resolves every tag with a HEAD: a verdict
 * must not rest on a cached digest.
 */
const REPOSITORIES = Number(process.env.BENCH_REPOSITORIES ?? 100)
const TAGS = Number(process.env.BENCH_TAGS ?? 200)
const CONCURRENCY = 8

runBench(async ({ db, registry }) => {
  const pusher = new RegistryClient(registryConfig(registry, { maxConcurrency: 32 }))
  const repos = Array.from({ length: REPOSITORIES }, (_, i) => `bench/repo-${String(i).padStart(3, '0')}`)
  const jobs = repos.flatMap((repository) =>
    Array.from({ length: TAGS }, (_, j) => ({ repository, tag: `build-${String(j).padStart(4, '0')}` })),
  )
  const pushed = await timed(() =>
    inParallel(jobs, 32, ({ repository, tag }) =>
      pushImage(pusher, repository, { tags: [tag], layers: 1, layerBytes: 64 }),
    ),
  )
  await pusher.close()
  log(`pushed ${jobs.length} images in ${(pushed.ms / 1000).toFixed(1)} s`)

  const config = benchConfig(db.url, {
    registries: [registryConfig(registry, { name: 'bench', maxConcurrency: CONCURRENCY })],
    governance: { teams: [{ name: 'bench', repositories: [{ pattern: 'bench/**' }] }] },
    // One repository at a time, `browse.concurrency` calls within it: the direct listing's pace.
    browse: { concurrency: CONCURRENCY, cacheMemoryBytes: 256 * 1024 * 1024 },
    retention: { concurrency: 1 },
  })
  const policy = {
    name: 'bench',
    team: 'bench',
    registry: 'bench',
    repositories: ['bench/**'],
    rules: {
      rules: [
        { select: { tagStatus: 'any' as const }, keep: { mostRecent: { count: 20, by: 'push' as const } } },
      ],
      default: 'expire' as const,
    },
    guards: {},
    schedule: null,
    mode: 'propose' as const,
    enabled: true,
  }
  const evaluate = async () => {
    const app = await buildApp(config, { background: false })
    await app.ready()
    try {
      const first = await timed(() => app.retention.evaluate(policy))
      const second = await timed(() => app.retention.evaluate(policy))
      return { first, second }
    } finally {
      await app.close()
    }
  }

  const direct = new Pool(registry.url, { connections: CONCURRENCY })
  const straight = () => headEveryTag(direct, repos, CONCURRENCY)

  const directRun = await timed(straight)
  const { first: cold, second: warm } = await evaluate()
  const directAgain = await timed(straight)
  const directMs = (directRun.ms + directAgain.ms) / 2
  await direct.close()

  if (cold.result.counts.tags !== directRun.result || warm.result.counts.tags !== directRun.result)
    throw new Error(`evaluations saw ${cold.result.counts.tags} tags, the registry lists ${directRun.result}`)
  if (cold.result.counts.expiredArtifacts !== REPOSITORIES * Math.max(0, TAGS - 20))
    throw new Error(
      `expected ${REPOSITORIES * (TAGS - 20)} expired, got ${cold.result.counts.expiredArtifacts}`,
    )

  log(`tags: ${directRun.result} in ${REPOSITORIES} repositories, concurrency ${CONCURRENCY}`)
  log(
    `policy: keep the 20 most recently pushed per repository → ${cold.result.counts.expiredArtifacts} expired`,
  )
  log(`direct listing (tags/list + HEAD per tag, mean of 2): ${directMs.toFixed(0)} ms`)
  log(`evaluation cold (HEAD + manifest GET per tag):        ${cold.ms.toFixed(0)} ms`)
  log(`evaluation with cached manifests (HEAD per tag):      ${warm.ms.toFixed(0)} ms`)
  log(`ratio cold / direct:   ${(cold.ms / directMs).toFixed(2)}`)
  log(`ratio cached / direct: ${(warm.ms / directMs).toFixed(2)}`)
})
