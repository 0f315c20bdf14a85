import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { RegistryClient } from '../../src/oci/index.js'
import { repositoryActivity } from '../../src/registry-events/index.js'
import { build } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { waitFor } from '../helpers/wait.js'
import { eventRegistries, OCI_MANIFEST, SECRET, SECRET_ENV } from './support.js'

/** Polls until `read` gives a time. */
async function waitForTime(read: () => Promise<Date | null | undefined>, timeoutMs: number, what: string) {
  return (await waitFor(read, timeoutMs, what)) as Date
}

t.test('a real docker-registry posts its push and pull notifications to Regent', async (t) => {
  const app = await build(t, { config: { registries: eventRegistries() }, env: { [SECRET_ENV]: SECRET } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const registry = await withRegistry(t, {
    notifications: {
      url: `http://127.0.0.1:${port}/v1/registries/hub/events`,
      headers: { 'X-Regent-Event-Secret': SECRET },
      timeout: '2s',
      threshold: 2,
      backoff: '100ms',
      ignoredMediaTypes: ['application/octet-stream'],
    },
  })
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const activity = () => repositoryActivity(app.db, 'hub', 'team/app')

  const beforePush = Date.now()
  const image = await pushImage(client, 'team/app', { tags: ['v1'] })
  const pushed = await waitForTime(
    async () => (await activity()).tags.get('v1')?.lastPushAt,
    15_000,
    'the push',
  )
  const afterPush = await activity()
  t.equal(afterPush.tags.get('v1')?.digest, image.digest, 'the tag points at the pushed manifest')
  t.ok(pushed.getTime() >= beforePush && pushed.getTime() <= Date.now(), 'stamped at the push')
  t.same(afterPush.digests.get(image.digest), { firstPushAt: pushed, lastPushAt: pushed, lastPullAt: null })
  t.equal(afterPush.digests.size, 1, 'blob uploads are not manifest activity')

  // Regent's own HEAD of the tag is reported by the registry as a pull; it must not count. The
  // registry delivers in order, so once the pull by digest below has arrived, so has the HEAD.
  t.ok(await client.headManifest('team/app', 'v1'))
  const beforePull = Date.now()
  const byDigest = await request(`${registry.url}/v2/team/app/manifests/${image.digest}`, {
    headers: { accept: OCI_MANIFEST, 'user-agent': 'containerd/1.7.24' },
  })
  await byDigest.body.dump()
  t.equal(byDigest.statusCode, 200)
  const digestPulled = await waitForTime(
    async () => (await activity()).digests.get(image.digest)?.lastPullAt,
    15_000,
    'the pull by digest',
  )
  t.ok(digestPulled.getTime() >= beforePull, 'the pull by digest, not our HEAD before it')
  t.equal((await activity()).tags.get('v1')?.lastPullAt, null, "Regent's HEAD of the tag is not a pull")

  const beforeTagPull = Date.now()
  const byTag = await request(`${registry.url}/v2/team/app/manifests/v1`, {
    headers: { accept: OCI_MANIFEST, 'user-agent': 'containerd/1.7.24' },
  })
  await byTag.body.dump()
  t.equal(byTag.statusCode, 200)
  const tagPulled = await waitForTime(
    async () => (await activity()).tags.get('v1')?.lastPullAt,
    15_000,
    'the pull by tag',
  )
  t.ok(tagPulled.getTime() >= beforeTagPull, 'the pull by tag is recorded for the tag')
  const final = await activity()
  t.same(final.digests.get(image.digest)?.lastPullAt, tagPulled, '…and for the digest it pulled')
  t.same(final.tags.get('v1')?.lastPushAt, pushed, 'pulls leave the push time')
})
