import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import { MediaTypes } from '../../src/oci/media-types.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage, pushIndex, sha256 } from '../helpers/fixtures.js'
import { registryConfig, type Teardownable, withRegistry } from '../helpers/registry.js'

async function behindProxy(t: Teardownable, registry: { url: string }) {
  const proxy = await startFaultProxy(registry.url)
  t.teardown(proxy.stop)
  const client = new RegistryClient(registryConfig(proxy))
  t.teardown(() => client.close())
  return { proxy, client }
}

const enabled = await withRegistry(t)
const disabled = await withRegistry(t, { deleteEnabled: false })

t.test('a registry with deletes enabled is probed as such, without deleting anything', async (t) => {
  const { proxy, client } = await behindProxy(t, enabled)
  const image = await pushImage(client, 'probe/app', { tags: ['v1'] })
  const caps = await client.probe()
  t.match(caps, {
    reachable: true,
    authKind: 'none',
    authenticated: undefined,
    apiVersion: 'registry/2.0',
    catalog: true,
    deleteEnabled: true,
    // distribution 2.8 has no tag delete: DELETE /manifests/<tag> answers 400 DIGEST_INVALID.
    tagDelete: false,
    referrersApi: false,
    probeRepository: 'probe/app',
  })
  t.equal(proxy.count('DELETE'), 2, 'one digest probe, one tag probe')
  t.equal((await client.headManifest('probe/app', 'v1'))?.digest, image.digest, 'the image is still there')

  const before = proxy.requests.length
  t.equal(await client.probe(), caps, 'cached')
  t.equal(proxy.requests.length, before, 'the cached probe sent nothing')
  const again = await client.probe({ refresh: true })
  t.not(again, caps, 'refresh probes again')
  t.ok(again.probedAt >= caps.probedAt)
  t.ok(proxy.requests.length > before)
})

t.test('a registry with deletes disabled is probed as such', async (t) => {
  const { client } = await behindProxy(t, disabled)
  await pushImage(client, 'probe/app', { tags: ['v1'] })
  t.match(await client.probe(), { reachable: true, deleteEnabled: false, tagDelete: false, catalog: true })
})

t.test('a delete where deletes are disabled is delete_disabled, with exactly one DELETE sent', async (t) => {
  const { proxy, client } = await behindProxy(t, disabled)
  const image = await pushImage(client, 'disabled/app', { tags: ['v1'] })
  proxy.resetCounts()
  const result = await client.deleteManifest('disabled/app', image.digest)
  t.same(result, { outcome: 'delete_disabled', status: 405, ociCode: 'UNSUPPORTED' })
  t.equal(proxy.count('DELETE'), 1, 'exactly one DELETE')
  t.equal(proxy.count('DELETE', `/v2/disabled/app/manifests/${image.digest}`), 1)
  t.equal((await client.headManifest('disabled/app', 'v1'))?.digest, image.digest, 'still there')
  t.same(await client.deleteTag('disabled/app', 'v1'), {
    outcome: 'delete_disabled',
    status: 405,
    ociCode: 'UNSUPPORTED',
  })
})

t.test('a read-only registry answers a bare 405, also delete_disabled', async (t) => {
  const { client: writer } = await behindProxy(t, enabled)
  const image = await pushImage(writer, 'readonly/app', { tags: ['v1'] })
  // A second registry process serving the same storage read-only (maintenance.readonly).
  const readOnly = await withRegistry(t, { readOnly: true, storageDir: enabled.storageDir })
  const { proxy, client } = await behindProxy(t, readOnly)
  const result = await client.deleteManifest('readonly/app', image.digest)
  t.same(result, { outcome: 'delete_disabled', status: 405 }, 'no UNSUPPORTED body, still delete_disabled')
  t.equal(proxy.count('DELETE'), 1)
})

t.test('deleting by digest removes every tag sharing it and nothing else', async (t) => {
  const { proxy, client } = await behindProxy(t, enabled)
  const shared = await pushImage(client, 'del/app', { tags: ['v1', 'latest'] })
  const sibling = await pushImage(client, 'del/app', { tags: ['v2'] })
  proxy.resetCounts()
  const result = await client.deleteManifest('del/app', shared.digest)
  t.same(result, { outcome: 'ok', status: 202 })
  t.equal(proxy.count('DELETE'), 1, 'one DELETE')
  t.equal(await client.headManifest('del/app', 'v1'), undefined, 'v1 gone')
  t.equal(await client.headManifest('del/app', 'latest'), undefined, 'latest gone with it')
  t.equal((await client.headManifest('del/app', 'v2'))?.digest, sibling.digest, 'the other image stays')

  proxy.resetCounts()
  t.same(await client.deleteManifest('del/app', shared.digest), { outcome: 'not_found', status: 404 })
  t.equal(proxy.count('DELETE'), 0, 'a manifest already gone is reported without a DELETE')
})

t.test('a tag delete on distribution 2.8 comes back delete_disabled and leaves the tag', async (t) => {
  const { proxy, client } = await behindProxy(t, enabled)
  const image = await pushImage(client, 'del/tags', { tags: ['v1', 'v2'] })
  proxy.resetCounts()
  t.same(await client.deleteTag('del/tags', 'v1'), {
    outcome: 'delete_disabled',
    status: 400,
    ociCode: 'DIGEST_INVALID',
  })
  t.equal(proxy.count('DELETE'), 1)
  t.equal((await client.headManifest('del/tags', 'v1'))?.digest, image.digest, 'the tag is still there')
  t.same(await client.deleteTag('del/tags', 'gone'), { outcome: 'not_found', status: 404 })
})

t.test('deleting an index leaves its children', async (t) => {
  const { client } = await behindProxy(t, enabled)
  const index = await pushIndex(client, 'del/multi', { tags: ['v1'] })
  t.same(await client.deleteManifest('del/multi', index.digest), { outcome: 'ok', status: 202 })
  for (const child of index.children) {
    t.equal((await client.headManifest('del/multi', child.digest))?.digest, child.digest, 'child still there')
  }
})

t.test('a legacy schema 1 manifest is refused before any DELETE is sent', async (t) => {
  const { proxy, client } = await behindProxy(t, enabled)
  const image = await pushImage(client, 'del/legacy', { tags: ['v1'] })
  proxy.resetCounts()
  await t.rejects(
    client.deleteManifest('del/legacy', image.digest, { mediaType: MediaTypes.DockerSchema1Signed }),
    {
      code: 'REGENT_LEGACY_MANIFEST',
      statusCode: 422,
    },
  )
  await t.rejects(client.deleteTag('del/legacy', 'v1', { mediaType: MediaTypes.DockerSchema1 }), {
    code: 'REGENT_LEGACY_MANIFEST',
  })
  t.equal(proxy.count('DELETE'), 0)
})

t.test('a registry serving a schema 1 manifest: recognised as legacy, never deleted', async (t) => {
  // distribution 2.8 can no longer store schema 1, so a capture server plays an old registry.
  const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'old/app', tag: 'v1', fsLayers: [] }))
  const digest = sha256(schema1)
  const old = await startCaptureServer((req) =>
    req.url.includes('/manifests/')
      ? {
          headers: { 'content-type': MediaTypes.DockerSchema1Signed, 'docker-content-digest': digest },
          body: schema1,
        }
      : { body: '{}' },
  )
  t.teardown(old.stop)
  const client = new RegistryClient(registryConfig(old))
  t.teardown(() => client.close())
  t.match(await client.getManifest('old/app', 'v1'), {
    digest,
    manifest: { kind: 'legacy', name: 'old/app' },
  })
  t.match(await client.headManifest('old/app', 'v1'), { digest, kind: 'legacy' })
  await t.rejects(client.deleteManifest('old/app', digest), { code: 'REGENT_LEGACY_MANIFEST' })
  await t.rejects(client.deleteTag('old/app', 'v1'), { code: 'REGENT_LEGACY_MANIFEST' })
  t.equal(
    old.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length,
    0,
    'no DELETE reached it',
  )
})
