import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import type { Logger } from '../../src/oci/transport.js'
import type { RegistryConfig } from '../../src/registries/config-schema.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage, pushRepositories } from '../helpers/fixtures.js'
import { registryConfig, type Teardownable, withRegistry } from '../helpers/registry.js'

/**
 * A caller that gives up (a GraphQL request past its timeout, a client that went away) passes a
 * signal: the request in flight is cut off, the wait before a retry ends, and no retry follows.
 * The registry is real; the fault proxy in front of it holds answers back.
 */

const registry = await withRegistry(t)
const proxy = await startFaultProxy(registry.url)
t.teardown(proxy.stop)
const seeder = new RegistryClient(registryConfig(registry))
t.teardown(() => seeder.close())
const image = await pushImage(seeder, 'cancel/app', { tags: ['v1'] })
await pushRepositories(seeder, 3, { prefix: 'cancel/listed' })
const manifestPath = '/v2/cancel/app/manifests/'
/** Long enough that a call still waiting for it is plainly not released by the abort. */
const HELD_MS = 10_000

function client(t: Teardownable, overrides: Partial<RegistryConfig> = {}, logger?: Logger) {
  const c = new RegistryClient(registryConfig(proxy, { retries: 3, ...overrides }), {
    retryBaseMs: 10,
    ...(logger ? { logger } : {}),
  })
  t.teardown(() => c.close())
  return c
}

function faultsFor(t: Teardownable) {
  proxy.resetCounts()
  t.teardown(() => proxy.clearFaults())
}

/** Waits for a condition the test cannot be told about directly, with a generous bound. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 30_000) throw new Error(`gave up waiting until ${what}`)
    await sleep(10)
  }
}

/** Settles with what `promise` rejected with, or fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('the call resolved instead of rejecting')
    },
    (err: unknown) => err,
  )
}

t.test('an aborted HEAD releases its connection at once and no retry follows', async (t) => {
  faultsFor(t)
  // One connection: a request still holding it would queue the next call behind the held answer.
  const c = client(t, { maxConcurrency: 1 })
  await c.ping()
  proxy.addFault({ fault: { kind: 'delay', ms: HELD_MS }, method: 'HEAD', path: manifestPath, times: 1 })
  const controller = new AbortController()
  const reason = new Error('the caller gave up')
  const pending = rejection(c.headManifest('cancel/app', 'v1', { signal: controller.signal }))
  await until(() => proxy.count('HEAD', manifestPath) === 1, 'the HEAD reached the proxy')

  const abortedAt = Date.now()
  controller.abort(reason)
  t.equal(await pending, reason, "rejects with the signal's own reason")
  const head = await c.headManifest('cancel/app', 'v1')
  const releasedAfter = Date.now() - abortedAt
  t.equal(head?.digest, image.digest, 'the one connection serves the next call')
  t.ok(releasedAfter < HELD_MS / 2, `released ${releasedAfter} ms after the abort, not when the answer came`)
  // With retries: 3 and 10 ms steps, a retry would have been sent long before this second.
  await sleep(1000)
  t.equal(proxy.count('HEAD', manifestPath), 2, 'the aborted HEAD and the next call, no retry')
})

t.test('an abort while waiting for Retry-After ends the call, and the retry is never sent', async (t) => {
  faultsFor(t)
  const retrying: object[] = []
  const logger: Logger = { debug() {}, info() {}, warn: (obj) => retrying.push(obj), error() {} }
  const c = client(t, {}, logger)
  await c.ping()
  proxy.addFault({
    fault: { kind: 'status', status: 503, headers: { 'retry-after': '30' } },
    path: manifestPath,
  })
  const controller = new AbortController()
  const reason = new Error('the caller gave up')
  const started = Date.now()
  const pending = rejection(c.getManifest('cancel/app', 'v1', { signal: controller.signal }))
  await until(() => retrying.length === 1, 'the client waits to retry')
  controller.abort(reason)
  t.equal(await pending, reason)
  const took = Date.now() - started
  t.ok(took < 15_000, `ended after ${took} ms, not after the 30 s Retry-After`)
  t.equal(proxy.count('GET', manifestPath), 1, 'only the first attempt was sent')
})

t.test('a signal aborted before the call sends nothing', async (t) => {
  faultsFor(t)
  const c = client(t)
  const reason = new Error('already gone')
  const signal = AbortSignal.abort(reason)
  t.equal(await rejection(c.headManifest('cancel/app', 'v1', { signal })), reason)
  t.equal(await rejection(c.getBlob('cancel/app', image.config.digest, { signal })), reason)
  t.equal(await rejection(c.tags('cancel/app', { signal }).next()), reason)
  t.equal(proxy.count(), 0, 'no request reached the registry')
})

t.test('the catalog stops between pages once the signal is aborted', async (t) => {
  faultsFor(t)
  const c = client(t)
  const controller = new AbortController()
  const reason = new Error('enough')
  const pages = c.catalog({ pageSize: 1, signal: controller.signal })
  const first = await pages.next()
  t.equal(first.done, false)
  controller.abort(reason)
  t.equal(await rejection(pages.next()), reason)
  t.equal(proxy.count('GET', '/v2/_catalog'), 1, 'the next page was not fetched')
})

t.test('every cancellable call rejects with the reason while its request is held', async (t) => {
  const calls: [string, RegExp, (c: RegistryClient, signal: AbortSignal) => Promise<unknown>][] = [
    ['tags', /\/tags\/list/, (c, signal) => c.tags('cancel/app', { signal }).next()],
    ['catalog', /\/_catalog/, (c, signal) => c.catalog({ signal }).next()],
    ['getManifest', /\/manifests\//, (c, signal) => c.getManifest('cancel/app', 'v1', { signal })],
    ['getBlob', /\/blobs\//, (c, signal) => c.getBlob('cancel/app', image.config.digest, { signal })],
    ['referrers', /\/referrers\//, (c, signal) => c.referrers('cancel/app', image.digest, { signal })],
  ]
  for (const [name, path, call] of calls) {
    await t.test(name, async (t) => {
      faultsFor(t)
      const c = client(t)
      await c.ping()
      proxy.addFault({ fault: { kind: 'delay', ms: HELD_MS }, path, times: 1 })
      const controller = new AbortController()
      const reason = new Error(`${name} given up`)
      const pending = rejection(call(c, controller.signal))
      await until(() => proxy.count(undefined, path) === 1, `${name} reached the proxy`)
      const abortedAt = Date.now()
      controller.abort(reason)
      t.equal(await pending, reason)
      const releasedAfter = Date.now() - abortedAt
      t.ok(releasedAfter < HELD_MS / 2, `released ${releasedAfter} ms after the abort`)
      await sleep(500)
      t.equal(proxy.count(undefined, path), 1, 'no retry')
    })
  }
})
