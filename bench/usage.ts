import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../src/app.js'
import { resolvePlan } from '../src/deletions/plan.js'
import { RegistryClient } from '../src/oci/index.js'
import { mapLimit } from '../src/registries/map-limit.js'
import { inParallel, type PushedImage, pushImage } from '../test/helpers/fixtures.js'
import { registryConfig } from '../test/helpers/registry.js'
import { benchConfig, log, runBench, timed } from './support.js'

/**
 * bench/usage: 10,000 pods across 3 fake clusters (bench/fake-clusters.ts: Deployments of 5 pods,
 * each with its current ReplicaSet and one kept for rollback) synced into Postgres, with the time
 * and the syncing process's peak memory; then the usage check for a plan of 1,000 tags (one `usageOf` for all of them) against
 * the least that resolving those tags costs the planner (a HEAD per tag at the registry, 8 in
 * flight), as a ratio.
 */
const PODS = Number(process.env.BENCH_PODS ?? 10_000)
const CLUSTERS = 3
const TAGS = Number(process.env.BENCH_TAGS ?? 1000)
const CONCURRENCY = 8
const ROUNDS = 5

const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`

runBench(async ({ db, registry }) => {
  const host = new URL(registry.url).host
  const pusher = new RegistryClient(registryConfig(registry, { maxConcurrency: 32 }))
  const tags = Array.from({ length: TAGS }, (_, i) => `build-${String(i).padStart(4, '0')}`)
  const images: PushedImage[] = []
  const pushed = await timed(() =>
    inParallel(tags, 32, async (tag) => {
      images.push(await pushImage(pusher, 'bench/plan', { tags: [tag], layers: 1, layerBytes: 64 }))
    }),
  )
  await pusher.close()
  log(`pushed ${TAGS} images in ${(pushed.ms / 1000).toFixed(1)} s`)

  // The clusters run in a child process: the peak RSS below is the syncing process's own.
  const dir = mkdtempSync(path.join(tmpdir(), 'regent-bench-kube-'))
  const imagesFile = path.join(dir, 'images.json')
  writeFileSync(imagesFile, JSON.stringify(images.map((i) => ({ digest: i.digest, tag: i.tags[0] }))))
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('./fake-clusters.js', import.meta.url)),
      dir,
      imagesFile,
      host,
      String(CLUSTERS),
      String(PODS),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  )
  const [line] = (await once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), 'line')) as [
    string,
  ]
  const { kubeconfigs, pods: podCount } = JSON.parse(line) as { kubeconfigs: string[]; pods: number }

  const config = benchConfig(db.url, {
    registries: [registryConfig(registry, { name: 'bench', maxConcurrency: CONCURRENCY })],
    usage: {
      sources: kubeconfigs.map((kubeconfig, i) => ({
        name: `cluster-${i}`,
        kind: 'kubernetes',
        refreshIntervalMs: '5m',
        staleAfterMs: '30m',
        kubernetes: { kubeconfig, pageSize: 500 },
      })),
    },
  })
  const app = await buildApp(config, { background: false })
  await app.ready()
  try {
    const rssBefore = process.resourceUsage().maxRSS
    const first = await timed(() => mapLimit(kubeconfigs, 1, (_c, i) => app.usage.sync(`cluster-${i}`)))
    const again = await timed(() => mapLimit(kubeconfigs, 1, (_c, i) => app.usage.sync(`cluster-${i}`)))
    const rssAfter = process.resourceUsage().maxRSS
    for (const r of [...first.result, ...again.result])
      if (r.outcome !== 'succeeded') throw new Error(`${r.source}: ${r.outcome} ${r.error ?? ''}`)
    const rows = first.result.reduce((n, r) => n + r.references, 0)
    log(`${podCount} pods in ${CLUSTERS} clusters (${rows} references stored)`)
    log(
      `sync, first (inserts): ${(first.ms / 1000).toFixed(2)} s; again (updates): ${(again.ms / 1000).toFixed(2)} s; ${Math.round(podCount / (first.ms / 1000))} pods/s`,
    )
    log(
      `peak RSS of the syncing process: ${mib(rssAfter)} (${mib(rssBefore)} before the syncs; the clusters run in a child process)`,
    )

    const client = app.registries.get('bench').client
    const candidates = images.map((image) => ({ digest: image.digest, tags: image.tags }))
    const resolve: number[] = []
    const check: number[] = []
    let inUse = 0
    for (let round = 0; round < ROUNDS; round++) {
      resolve.push(
        (await timed(() => mapLimit(tags, CONCURRENCY, (tag) => client.headManifest('bench/plan', tag)))).ms,
      )
      const checked = await timed(() => app.usage.usageOf('bench', 'bench/plan', candidates))
      check.push(checked.ms)
      inUse = [...checked.result.values()].filter((v) => v.status === 'in-use').length
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    log(
      `resolving ${TAGS} tags (HEAD each, ${CONCURRENCY} in flight): ${median(resolve).toFixed(0)} ms (median of ${ROUNDS})`,
    )
    log(
      `usageOf for the same ${TAGS} candidates (${inUse} in use): ${median(check).toFixed(1)} ms (median of ${ROUNDS})`,
    )
    log(`usage check / resolution: ${((median(check) / median(resolve)) * 100).toFixed(1)}% (goal: < 10%)`)

    // The whole plan of a deletion of those 1,000 tags (the resolver a stored request runs: a fresh
    // look at every tag), with and without the usage check, alternating.
    const plan = (withUsage: boolean) =>
      resolvePlan(
        {
          registries: app.registries,
          browse: app.browse,
          governance: config.governance,
          holds: [],
          now: new Date(),
          fresh: true,
          ...(withUsage ? { usage: app.usage } : {}),
        },
        'bench',
        'delete-manifest',
        [{ repository: 'bench/plan', tagPattern: 'build-*' }],
      )
    const plain: number[] = []
    const guarded: number[] = []
    let refused = 0
    for (let round = 0; round < ROUNDS; round++) {
      plain.push((await timed(() => plan(false))).ms)
      const checked = await timed(() => plan(true))
      guarded.push(checked.ms)
      refused = checked.result.items.filter((i) => i.inUse).length
    }
    log(
      `plan of ${TAGS} tags: ${median(plain).toFixed(0)} ms without the usage check, ${median(guarded).toFixed(0)} ms with it (${refused} items in use), median of ${ROUNDS}`,
    )
    const extra = (median(guarded) / median(plain) - 1) * 100
    log(`plan with usage / without: ${extra >= 0 ? '+' : ''}${extra.toFixed(1)}% (goal: under +10%)`)
  } finally {
    await app.close()
    child.stdin?.end()
    await once(child, 'exit')
    rmSync(dir, { recursive: true, force: true })
  }
})
