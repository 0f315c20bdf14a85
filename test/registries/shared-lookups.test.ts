import t, { type Test } from 'tap'
import type { Principal } from '../../src/auth/principal.js'
import { RegistryClient } from '../../src/oci/index.js'
import { build } from '../helper.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

/**
 * Callers asking for the same thing at once share one registry call. A caller that gives up (a
 * GraphQL request past its timeout) stops waiting for it, and the call still answers the others:
 * one caller's timeout must never become another caller's error. The registry is real; the fault
 * proxy in front of it holds the HEAD back.
 */

const viewer: Principal = { subject: 'vera', teams: [], roles: ['viewer'], channel: 'api' }
const registry = await withRegistry(t)
const seeder = new RegistryClient(registryConfig(registry))
t.teardown(() => seeder.close())
const image = await pushImage(seeder, 'shared/app', { tags: ['v1'] })
const proxy = await startFaultProxy(registry.url)
t.teardown(proxy.stop)
const HELD_MS = 3000

async function browseThroughProxy(t: Test) {
  const app = await build(t, {
    config: { registries: [registryConfig({ url: proxy.url }, { name: 'local' })] },
  })
  proxy.resetCounts()
  t.teardown(() => proxy.clearFaults())
  return app.browse
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 30_000) throw new Error(`gave up waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test(
  'the first caller gives up on a shared HEAD: it is released at once, the second still gets the answer',
  async (t) => {
    const browse = await browseThroughProxy(t)
    proxy.addFault({
      method: 'HEAD',
      path: /\/manifests\/v1$/,
      fault: { kind: 'delay', ms: HELD_MS },
      times: 1,
    })
    const first = new AbortController()
    const reason = new Error('the first caller timed out')
    const firstCall = browse.getManifest(viewer, 'local', 'shared/app', 'v1', first.signal).then(
      () => 'resolved',
      (err: unknown) => err,
    )
    await until(() => proxy.count('HEAD') === 1, 'the HEAD reached the registry')
    const secondCall = browse.getManifest(viewer, 'local', 'shared/app', 'v1')
    const abortedAt = Date.now()
    first.abort(reason)
    t.equal(await firstCall, reason, 'the first caller gets its own reason')
    t.ok(Date.now() - abortedAt < HELD_MS / 2, 'and without waiting for the held answer')
    const answer = await secondCall
    t.equal(answer.digest, image.digest, 'the second caller gets the answer of the same call')
    t.equal(proxy.count('HEAD', /\/manifests\/v1$/), 1, 'one HEAD served both callers')
  },
)

t.test('a caller that has already given up starts nothing', async (t) => {
  const browse = await browseThroughProxy(t)
  const gaveUp = new AbortController()
  const reason = new Error('gone')
  gaveUp.abort(reason)
  const result = await browse.listTags(viewer, 'local', 'shared/app', { limit: 10 }, gaveUp.signal).then(
    () => 'resolved',
    (err: unknown) => err,
  )
  t.equal(result, reason)
  t.equal(proxy.count(), 0, 'no registry call was sent')
})
