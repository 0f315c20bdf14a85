import t from 'tap'
import { RegistryClient, type RegistryClientOptions } from '../../src/oci/client.js'
import type { RegistryConfig } from '../../src/registries/config-schema.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { freePort, registryConfig, type Teardownable, withRegistry } from '../helpers/registry.js'

const registry = await withRegistry(t)
const proxy = await startFaultProxy(registry.url)
t.teardown(proxy.stop)
const seeder = new RegistryClient(registryConfig(registry))
t.teardown(() => seeder.close())
const image = await pushImage(seeder, 'faults/app', { tags: ['v1'] })
const manifestPath = '/v2/faults/app/manifests/'

function client(
  t: Teardownable,
  overrides: Partial<RegistryConfig> = {},
  options: RegistryClientOptions = {},
) {
  const c = new RegistryClient(registryConfig(proxy, overrides), { retryBaseMs: 10, ...options })
  t.teardown(() => c.close())
  return c
}

function faultsFor(t: Teardownable) {
  proxy.resetCounts()
  t.teardown(() => proxy.clearFaults())
}

t.test('a hanging registry fails within the configured headers timeout', async (t) => {
  faultsFor(t)
  const c = client(t, { timeouts: { connectMs: 500, headersMs: 500, bodyMs: 500 }, retries: 0 })
  await c.ping()
  proxy.addFault({ fault: { kind: 'hang' }, path: manifestPath })
  const started = Date.now()
  await t.rejects(c.headManifest('faults/app', 'v1'), {
    code: 'REGENT_REGISTRY_TIMEOUT',
    statusCode: 504,
    outcome: 'network',
  })
  const elapsed = Date.now() - started
  // Not before the configured 500 ms, and far sooner than the 30 s default: the configured timeout
  // ended it (the upper bound leaves room for a loaded machine).
  t.ok(elapsed >= 450 && elapsed < 10_000, `failed after ${elapsed} ms`)
})

t.test('a hanging GET is retried up to `retries`, each attempt bounded by the timeout', async (t) => {
  faultsFor(t)
  const c = client(t, { timeouts: { connectMs: 500, headersMs: 300, bodyMs: 300 }, retries: 2 })
  await c.ping()
  proxy.addFault({ fault: { kind: 'hang' }, path: manifestPath })
  const started = Date.now()
  await t.rejects(c.getManifest('faults/app', 'v1'), { code: 'REGENT_REGISTRY_TIMEOUT' })
  t.equal(proxy.count('GET', manifestPath), 3, 'one try and two retries')
  // undici checks its headers timeout on a ~0.5 s tick, so each attempt ends within timeout + 1 s;
  // three attempts stay far below a single 30 s default timeout, with room for a loaded machine.
  const elapsed = Date.now() - started
  t.ok(elapsed < 15_000, `three attempts took ${elapsed} ms`)
})

t.test('429 with Retry-After: 2 delays the retried GET by at least 2 s', async (t) => {
  faultsFor(t)
  const c = client(t)
  await c.ping()
  proxy.addFault({
    fault: {
      kind: 'status',
      status: 429,
      headers: { 'retry-after': '2' },
      body: '{"errors":[{"code":"TOOMANYREQUESTS"}]}',
    },
    path: manifestPath,
    times: 1,
  })
  const got = await c.getManifest('faults/app', 'v1')
  t.equal(got.digest, image.digest)
  const [first, second] = proxy.requests.filter((r) => r.url.startsWith(manifestPath))
  t.equal(first?.fault, 'status')
  t.ok(second, 'retried once')
  const gap = (second?.at ?? 0) - (first?.at ?? 0)
  t.ok(gap >= 2000, `retried after ${gap} ms`)
})

t.test('Retry-After as an HTTP date is honoured too', async (t) => {
  faultsFor(t)
  const c = client(t)
  await c.ping()
  const at = new Date(Date.now() + 1500).toUTCString()
  proxy.addFault({
    fault: { kind: 'status', status: 503, headers: { 'retry-after': at } },
    path: manifestPath,
    times: 1,
  })
  await c.headManifest('faults/app', 'v1')
  const [first, second] = proxy.requests.filter((r) => r.url.startsWith(manifestPath))
  const gap = (second?.at ?? 0) - (first?.at ?? 0)
  t.ok(gap >= 1000, `retried after ${gap} ms`)
})

t.test('a Retry-After longer than the client will wait fails at once, carrying it', async (t) => {
  faultsFor(t)
  const c = client(t, {}, { maxRetryAfterSeconds: 30 })
  await c.ping()
  proxy.addFault({
    fault: { kind: 'status', status: 429, headers: { 'retry-after': '3600' } },
    path: manifestPath,
  })
  await t.rejects(c.headManifest('faults/app', 'v1'), {
    code: 'REGENT_REGISTRY_RATE_LIMITED',
    statusCode: 503,
    retryAfterSeconds: 3600,
  })
  t.equal(proxy.count('HEAD', manifestPath), 1)
})

t.test('a burst of 5xx is retried through, and a longer one fails after `retries`', async (t) => {
  faultsFor(t)
  const c = client(t, { retries: 2 })
  await c.ping()
  proxy.addFault({ fault: { kind: 'status', status: 503 }, path: manifestPath, times: 2 })
  t.equal((await c.getManifest('faults/app', 'v1')).digest, image.digest)
  t.equal(proxy.count('GET', manifestPath), 3)

  proxy.resetCounts()
  proxy.addFault({ fault: { kind: 'status', status: 502 }, path: manifestPath, times: 5 })
  await t.rejects(c.getManifest('faults/app', 'v1'), {
    code: 'REGENT_REGISTRY_UNAVAILABLE',
    registryStatus: 502,
    outcome: 'server_error',
  })
  t.equal(proxy.count('GET', manifestPath), 3, 'three attempts, no more')
})

t.test('DELETE and PUT are never retried', async (t) => {
  faultsFor(t)
  const c = client(t, { retries: 3 })
  await c.ping()
  proxy.addFault({ fault: { kind: 'status', status: 503 }, method: 'DELETE', times: 1 })
  await t.rejects(c.deleteManifest('faults/app', image.digest), { code: 'REGENT_REGISTRY_UNAVAILABLE' })
  t.equal(proxy.count('DELETE'), 1)
  t.equal((await c.headManifest('faults/app', 'v1'))?.digest, image.digest, 'nothing was deleted')

  proxy.addFault({ fault: { kind: 'status', status: 500 }, method: 'PUT', times: 1 })
  await t.rejects(c.putManifest('faults/app', 'v2', image.mediaType, image.bytes), {
    code: 'REGENT_REGISTRY_UNAVAILABLE',
    registryStatus: 500,
  })
  t.equal(proxy.count('PUT'), 1)
  t.equal(await c.headManifest('faults/app', 'v2'), undefined, 'nothing was pushed')
})

t.test('a slow but timely registry is simply waited for', async (t) => {
  faultsFor(t)
  const c = client(t, { timeouts: { connectMs: 500, headersMs: 1000, bodyMs: 1000 }, retries: 0 })
  proxy.addFault({ fault: { kind: 'delay', ms: 300 }, path: manifestPath, times: 1 })
  t.equal((await c.headManifest('faults/app', 'v1'))?.digest, image.digest)
})

t.test('a registry nobody listens on is REGENT_REGISTRY_UNAVAILABLE after the retries', async (t) => {
  const port = await freePort()
  const c = new RegistryClient(registryConfig({ url: `http://127.0.0.1:${port}` }, { retries: 1 }), {
    retryBaseMs: 10,
  })
  t.teardown(() => c.close())
  await t.rejects(c.headManifest('faults/app', 'v1'), {
    code: 'REGENT_REGISTRY_UNAVAILABLE',
    outcome: 'network',
  })
  t.match(await c.probe(), { reachable: false })
})
