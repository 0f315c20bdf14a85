/**
 * Memory while iterating a repository of many tags with `RegistryClient.tags()`, against a real
 * distribution 2.8 registry (which ignores `n` on tags/list and sends every tag in one answer) and
 * against a registry that pages (distribution v3 / OCI behaviour, played by the capture server).
 *
 *   node --import @tapjs/typescript/import bench/oci-tags-memory.ts [tags=20000]
 *
 * Pushing 20,000 tags takes about a minute on 2 cores, which is why this is not in the test suite
 * (test/oci/pagination.test.ts keeps a 20,000-tag check against the paging fake registry).
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import { RegistryClient } from '../src/oci/client.js'
import { type CapturedRequest, startCaptureServer } from '../test/helpers/capture-server.js'
import { startFaultProxy } from '../test/helpers/fault-proxy.js'
import { pushManyTags } from '../test/helpers/fixtures.js'
import { registryConfig, startRegistry } from '../test/helpers/registry.js'

const COUNT = Number(process.argv[2] ?? 20_000)
const PAGE = 100
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`

interface Measure {
  tags: number
  pages: number
  ms: number
  peakHeapDelta: number
  retainedHeapDelta: number
  peakRssDelta: number
}

async function measure(client: RegistryClient, repository: string, pages: () => number): Promise<Measure> {
  gc()
  const base = process.memoryUsage()
  let peakHeap = base.heapUsed
  let peakRss = base.rss
  let retained = 0
  let tags = 0
  const started = performance.now()
  for await (const _tag of client.tags(repository, { pageSize: PAGE })) {
    tags++
    if (tags % 500 === 0) {
      const now = process.memoryUsage()
      peakHeap = Math.max(peakHeap, now.heapUsed)
      peakRss = Math.max(peakRss, now.rss)
    }
    if (tags === COUNT) {
      gc()
      retained = process.memoryUsage().heapUsed - base.heapUsed
    }
  }
  return {
    tags,
    pages: pages(),
    ms: Math.round(performance.now() - started),
    peakHeapDelta: peakHeap - base.heapUsed,
    retainedHeapDelta: retained,
    peakRssDelta: peakRss - base.rss,
  }
}

function report(label: string, m: Measure): void {
  console.log(
    `${label.padEnd(34)} tags=${m.tags} pages=${m.pages} time=${m.ms} ms ` +
      `peak heap +${mb(m.peakHeapDelta)} retained heap ${mb(m.retainedHeapDelta)} peak rss +${mb(m.peakRssDelta)}`,
  )
}

const registry = await startRegistry()
const proxy = await startFaultProxy(registry.url)
const client = new RegistryClient(registryConfig(proxy, { maxConcurrency: 16 }))
try {
  const pushStart = performance.now()
  const { tags } = await pushManyTags(client, 'bench/many-tags', COUNT, {
    concurrency: 16,
    prefix: 'release-2026.01-build-', // ~28 characters, like real CI tags
  })
  console.log(`pushed ${COUNT} tags in ${((performance.now() - pushStart) / 1000).toFixed(1)} s`)

  // What holding every tag costs: the list parsed from one answer, as a buffering client keeps it.
  gc()
  const before = process.memoryUsage().heapUsed
  const held = JSON.parse(JSON.stringify({ name: 'bench/many-tags', tags })) as { tags: string[] }
  gc()
  console.log(
    `holding all ${held.tags.length} tags in memory: +${mb(process.memoryUsage().heapUsed - before)} heap`,
  )
  held.tags.length = 0

  proxy.resetCounts()
  report(
    'distribution 2.8 (one answer)',
    await measure(client, 'bench/many-tags', () => proxy.count('GET', '/v2/bench/many-tags/tags/list')),
  )

  const fake = await startCaptureServer()
  fake.respond((req: CapturedRequest) => {
    const url = new URL(req.url, 'http://x')
    if (!url.pathname.endsWith('/tags/list')) return { body: '{}' }
    const last = url.searchParams.get('last')
    const start = last === null ? 0 : tags.findIndex((t) => t > last)
    const page = start < 0 ? [] : tags.slice(start, start + PAGE)
    const end = page.at(-1)
    const headers: Record<string, string> =
      end !== undefined && start + PAGE < tags.length
        ? { link: `</v2/bench/many-tags/tags/list?n=${PAGE}&last=${end}>; rel="next"` }
        : {}
    return { headers, body: JSON.stringify({ name: 'bench/many-tags', tags: page }) }
  })
  const paged = new RegistryClient(registryConfig(fake))
  report(
    `paging registry (n=${PAGE}, Link)`,
    await measure(
      paged,
      'bench/many-tags',
      () => fake.requests.filter((r) => r.url.includes('/tags/list')).length,
    ),
  )
  await paged.close()
  await fake.stop()
} finally {
  await client.close()
  await proxy.stop()
  await registry.stop()
}
