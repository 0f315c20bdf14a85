import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildApp } from '../src/app.js'
import { RegistryClient } from '../src/oci/index.js'
import { mapLimit } from '../src/registries/map-limit.js'
import { type FakeKubernetes, pod, startFakeKubernetes, workload } from '../test/helpers/fake-kubernetes.js'
import { inParallel, type PushedImage, pushImage } from '../test/helpers/fixtures.js'
import { registryConfig } from '../test/helpers/registry.js'
import { benchConfig, log, runBench, timed } from './support.js'

/**
 * bench/usage: 10,000 pods across 3 fake clusters (Deployments of 5 pods, each with its current
 * ReplicaSet and one kept for rollback) synced into Postgres, with the time and the process's peak
 * memory; then the usage check for a plan of 1,000 tags (one `usageOf` for all of them) against
 * the least that resolving those tags costs the planner (a HEAD per tag at the registry, 8 in
 * flight), as a ratio.
 */
const PODS = Number(process.env.BENCH_PODS ?? 10_000)
const CLUSTERS = 3
const PODS_PER_DEPLOYMENT = 5
const TAGS = Number(process.env.BENCH_TAGS ?? 1000)
const CONCURRENCY = 8
const ROUNDS = 5

const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`

function populate(cluster: FakeKubernetes, index: number, host: string, images: PushedImage[]): void {
  const pods = Math.ceil(PODS / CLUSTERS)
  const deployments = Math.ceil(pods / PODS_PER_DEPLOYMENT)
  for (let d = 0; d < deployments; d++) {
    const image = images[(d * CLUSTERS + index) % images.length] as PushedImage
    const previous = images[(d * CLUSTERS + index + 1) % images.length] as PushedImage
    const namespace = `team-${d % 40}`
    const name = `svc-${d}`
    const ref = `${host}/bench/plan:${image.tags[0]}`
    cluster.objects.Deployment.push(
      workload('Deployment', {
        namespace,
        name,
        replicas: PODS_PER_DEPLOYMENT,
        containers: [{ name: 'app', image: ref }],
      }),
    )
    cluster.objects.ReplicaSet.push(
      workload('ReplicaSet', {
        namespace,
        name: `${name}-new`,
        owner: { kind: 'Deployment', name },
        containers: [{ name: 'app', image: ref }],
      }),
      workload('ReplicaSet', {
        namespace,
        name: `${name}-old`,
        replicas: 0,
        owner: { kind: 'Deployment', name },
        containers: [{ name: 'app', image: `${host}/bench/plan@${previous.digest}` }],
      }),
    )
    for (let p = 0; p < PODS_PER_DEPLOYMENT && cluster.objects.Pod.length < pods; p++) {
      cluster.objects.Pod.push(
        pod({
          namespace,
          name: `${name}-new-${p}`,
          owner: { kind: 'ReplicaSet', name: `${name}-new` },
          containers: [
            { name: 'app', image: ref, imageID: `docker-pullable://${host}/bench/plan@${image.digest}` },
          ],
          initContainers: [
            { name: 'init', image: 'busybox:1.36', imageID: `docker.io/library/busybox@${image.digest}` },
          ],
        }),
      )
    }
  }
}

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

  const clusters = await Promise.all(Array.from({ length: CLUSTERS }, () => startFakeKubernetes()))
  const dir = mkdtempSync(path.join(tmpdir(), 'regent-bench-kube-'))
  for (const [i, cluster] of clusters.entries()) populate(cluster, i, host, images)
  const podCount = clusters.reduce((n, c) => n + c.objects.Pod.length, 0)

  const config = benchConfig(db.url, {
    registries: [registryConfig(registry, { name: 'bench', maxConcurrency: CONCURRENCY })],
    usage: {
      sources: clusters.map((cluster, i) => ({
        name: `cluster-${i}`,
        kind: 'kubernetes',
        refreshIntervalMs: '5m',
        staleAfterMs: '30m',
        kubernetes: { kubeconfig: cluster.kubeconfig(dir), pageSize: 500 },
      })),
    },
  })
  const app = await buildApp(config, { background: false })
  await app.ready()
  try {
    const rssBefore = process.resourceUsage().maxRSS
    const first = await timed(() => mapLimit(clusters, 1, (_c, i) => app.usage.sync(`cluster-${i}`)))
    const again = await timed(() => mapLimit(clusters, 1, (_c, i) => app.usage.sync(`cluster-${i}`)))
    const rssAfter = process.resourceUsage().maxRSS
    for (const r of [...first.result, ...again.result])
      if (r.outcome !== 'succeeded') throw new Error(`${r.source}: ${r.outcome} ${r.error ?? ''}`)
    const rows = first.result.reduce((n, r) => n + r.references, 0)
    log(`${podCount} pods in ${CLUSTERS} clusters (${rows} references stored)`)
    log(
      `sync, first (inserts): ${(first.ms / 1000).toFixed(2)} s; again (updates): ${(again.ms / 1000).toFixed(2)} s; ${Math.round(podCount / (first.ms / 1000))} pods/s`,
    )
    log(
      `peak RSS: ${mib(rssAfter)} (before the syncs ${mib(rssBefore)}, with the fake clusters' 10,000 pod objects in the same process)`,
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
  } finally {
    await app.close()
    await Promise.all(clusters.map((c) => c.close()))
    rmSync(dir, { recursive: true, force: true })
  }
})
