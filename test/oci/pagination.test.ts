import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import { type CapturedRequest, type CaptureResponse, startCaptureServer } from '../helpers/capture-server.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushManyTags, pushRepositories } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

const registry = await withRegistry(t)
const proxy = await startFaultProxy(registry.url)
t.teardown(proxy.stop)
const client = new RegistryClient(registryConfig(proxy))
t.teardown(() => client.close())

const repositories = await pushRepositories(client, 25, { prefix: 'catalog/repo' })
const { tags: manyTags } = await pushManyTags(client, 'catalog/many-tags', 130)

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = []
  for await (const item of iterable) out.push(item)
  return out
}

t.test(
  'the catalog of 26 repositories is listed completely, 10 per page, without gaps or repeats',
  async (t) => {
    proxy.resetCounts()
    const listed = await collect(client.catalog({ pageSize: 10 }))
    const expected = [...repositories, 'catalog/many-tags'].sort()
    t.same(listed, expected, 'every repository once, in order')
    t.equal(new Set(listed).size, listed.length, 'no repeats')
    t.equal(proxy.count('GET', '/v2/_catalog'), 3, 'three pages followed through Link headers')
  },
)

t.test('the catalog resumes after `last`', async (t) => {
  const expected = [...repositories, 'catalog/many-tags'].sort()
  const last = expected[11] as string
  t.same(await collect(client.catalog({ pageSize: 10, last })), expected.slice(12))
})

t.test('a 130-tag repository is listed completely with page size 10', async (t) => {
  proxy.resetCounts()
  const listed = await collect(client.tags('catalog/many-tags', { pageSize: 10 }))
  t.same([...listed].sort(), manyTags, 'every tag once')
  t.equal(new Set(listed).size, 130, 'no repeats')
  // distribution 2.8 ignores `n` on tags/list and answers one page; v3 pages. Both are complete.
  t.comment(
    `tags/list pages requested from distribution 2.8: ${proxy.count('GET', '/v2/catalog/many-tags/tags/list')}`,
  )
})

t.test('tags of an unknown repository fail with REGENT_REGISTRY_NOT_FOUND / NAME_UNKNOWN', async (t) => {
  await t.rejects(collect(client.tags('catalog/none')), {
    code: 'REGENT_REGISTRY_NOT_FOUND',
    ociCode: 'NAME_UNKNOWN',
  })
})

/**
 * A registry that pages tags/list (as distribution v3 and the OCI spec do), played by the
 * capture server: `n` and `last` honoured, `Link: <…>; rel="next"` on every page but the last.
 */
function pagedTags(all: string[], linkStyle: 'relative' | 'absolute', origin: () => string) {
  return (req: CapturedRequest): CaptureResponse => {
    const url = new URL(req.url, 'http://x')
    if (!url.pathname.endsWith('/tags/list')) return { body: '{}' }
    const n = Number(url.searchParams.get('n') ?? all.length)
    const last = url.searchParams.get('last')
    const start = last === null ? 0 : all.findIndex((tag) => tag > last)
    const page = start < 0 ? [] : all.slice(start, start + n)
    const headers: Record<string, string> = {}
    const end = page.at(-1)
    if (end !== undefined && start + n < all.length) {
      const next = `/v2/big/tags/list?n=${n}&last=${encodeURIComponent(end)}`
      headers.link = `<${linkStyle === 'absolute' ? origin() + next : next}>; rel="next"`
    }
    return { headers, body: JSON.stringify({ name: 'big', tags: page }) }
  }
}

t.test('a paging registry is followed page by page through relative and absolute Link headers', async (t) => {
  const all = Array.from({ length: 95 }, (_, i) => `v${String(i).padStart(3, '0')}`)
  for (const style of ['relative', 'absolute'] as const) {
    const fake = await startCaptureServer()
    fake.respond(pagedTags(all, style, () => fake.url))
    const paged = new RegistryClient(registryConfig(fake))
    t.same(await collect(paged.tags('big', { pageSize: 10 })), all, `${style} links`)
    t.equal(fake.requests.filter((r) => r.url.includes('/tags/list')).length, 10, `${style}: ten pages`)
    await paged.close()
    await fake.stop()
  }
})

t.test('a pagination Link to another origin is refused and nothing is sent there', async (t) => {
  const elsewhere = await startCaptureServer()
  t.teardown(elsewhere.stop)
  const fake = await startCaptureServer((req) =>
    req.url.includes('/tags/list')
      ? {
          headers: { link: `<${elsewhere.url}/v2/big/tags/list?n=1&last=a>; rel="next"` },
          body: '{"tags":["a"]}',
        }
      : { body: '{}' },
  )
  t.teardown(fake.stop)
  const paged = new RegistryClient(registryConfig(fake))
  t.teardown(() => paged.close())
  await t.rejects(collect(paged.tags('big', { pageSize: 1 })), { code: 'REGENT_REGISTRY_ERROR' })
  t.equal(elsewhere.requests.length, 0)
})

t.test('iterating 20,000 tags holds one page, not the whole list', async (t) => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  // Long tags make holding them all clearly measurable (~3 MB for 20,000).
  const all = Array.from(
    { length: 20_000 },
    (_, i) => `build-${String(i).padStart(6, '0')}-${'x'.repeat(100)}`,
  )
  const fake = await startCaptureServer()
  t.teardown(fake.stop)
  fake.respond(pagedTags(all, 'relative', () => fake.url))
  const paged = new RegistryClient(registryConfig(fake))
  t.teardown(() => paged.close())

  const heap = () => {
    gc()
    return process.memoryUsage().heapUsed
  }
  const base = heap()
  // What a client that buffers every page keeps: a fresh copy of every tag string.
  const held = JSON.parse(JSON.stringify(all)) as string[]
  const holdingAll = heap() - base
  held.length = 0

  const start = heap()
  let count = 0
  let retained = 0
  for await (const tag of paged.tags('big', { pageSize: 100 })) {
    if (tag !== all[count]) t.fail(`tag ${count} out of order`)
    count++
    if (count === all.length) retained = heap() - start
  }
  t.equal(count, 20_000)
  t.equal(fake.requests.filter((r) => r.url.includes('/tags/list')).length, 200, '200 pages of 100')
  t.comment(
    `heap held by 20,000 tags: ${(holdingAll / 1e6).toFixed(2)} MB; retained while iterating: ${(retained / 1e6).toFixed(2)} MB`,
  )
  t.ok(retained < holdingAll / 2, 'iteration keeps far less than the whole list')
})
