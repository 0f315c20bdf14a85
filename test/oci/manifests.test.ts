import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import { MediaTypes } from '../../src/oci/media-types.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushArtifact, pushImage, pushIndex, pushReferrersTag, sha256 } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

const registry = await withRegistry(t)
const proxy = await startFaultProxy(registry.url)
t.teardown(proxy.stop)
const client = new RegistryClient(registryConfig(proxy, { retries: 2 }), { retryBaseMs: 10 })
t.teardown(() => client.close())

const docker = await pushImage(client, 'fixtures/docker', { format: 'docker', tags: ['v1'] })
const oci = await pushImage(client, 'fixtures/oci', { format: 'oci', tags: ['v1', 'stable', 'latest'] })
const index = await pushIndex(client, 'fixtures/multi', { tags: ['v1'] })

t.test('every fixture digest equals the sha256 of the bytes pushed, by HEAD and by GET', async (t) => {
  for (const image of [docker, oci, index]) {
    t.equal(image.digest, sha256(image.bytes), `${image.repository}: fixture digest is sha256 of its bytes`)
    const head = await client.headManifest(image.repository, 'v1')
    t.same(head, { digest: image.digest, mediaType: image.mediaType, size: image.size, kind: head?.kind })
    const got = await client.getManifest(image.repository, 'v1')
    t.equal(got.digest, image.digest, `${image.repository}: GET by tag`)
    t.ok(got.bytes.equals(image.bytes), `${image.repository}: bytes are the pushed bytes`)
    const byDigest = await client.getManifest(image.repository, image.digest)
    t.equal(byDigest.digest, image.digest, `${image.repository}: GET by digest`)
  }
})

t.test('a Docker v2 image parses into config and layers with sizes', async (t) => {
  const { manifest, mediaType } = await client.getManifest(docker.repository, 'v1')
  t.equal(mediaType, MediaTypes.DockerManifest)
  if (manifest.kind !== 'image') return t.fail(`expected an image, got ${manifest.kind}`)
  t.same(manifest.config, {
    mediaType: MediaTypes.DockerConfig,
    digest: docker.config.digest,
    size: docker.config.size,
  })
  t.same(
    manifest.layers.map((l) => [l.digest, l.size]),
    docker.layers.map((l) => [l.digest, l.size]),
  )
})

t.test('an OCI index lists both platforms with distinct children', async (t) => {
  const { manifest } = await client.getManifest(index.repository, 'v1')
  if (manifest.kind !== 'index') return t.fail(`expected an index, got ${manifest.kind}`)
  t.same(
    manifest.manifests.map((m) => ({ digest: m.digest, size: m.size, platform: m.platform })),
    index.children.map((c) => ({ digest: c.digest, size: c.size, platform: c.platform })),
  )
  t.not(index.children[0]?.digest, index.children[1]?.digest, 'children differ')
  for (const child of index.children) {
    const got = await client.getManifest(index.repository, child.digest)
    t.equal(got.digest, child.digest, `child ${child.platform.architecture} fetched by digest`)
  }
})

t.test('tags sharing one digest resolve to the same digest', async (t) => {
  const digests = await Promise.all(oci.tags.map((tag) => client.headManifest(oci.repository, tag)))
  t.same(
    digests.map((d) => d?.digest),
    oci.tags.map(() => oci.digest),
  )
})

t.test('the image config blob is digest-checked and parsed', async (t) => {
  const bytes = await client.getBlob(oci.repository, oci.config.digest, { maxBytes: 64 * 1024 })
  t.ok(bytes.equals(oci.config.bytes))
  const config = await client.getImageConfig(oci.repository, oci.config.digest)
  t.equal(config.created, oci.config.created)
  t.equal(config.os, 'linux')
  t.equal(config.architecture, 'amd64')
  t.equal(config.labels['org.opencontainers.image.source'], 'https://example.invalid/regent')
  t.equal(config.history.length, 3)
  t.same(config.history.at(-1), {
    created: oci.config.created,
    createdBy: '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
    emptyLayer: true,
  })
  t.same(
    config.diffIds,
    oci.layers.map((l) => l.digest),
  )
  await t.rejects(client.getBlob(oci.repository, oci.config.digest, { maxBytes: 10 }), {
    code: 'REGENT_REGISTRY_RESPONSE_TOO_LARGE',
  })
  t.same(await client.headBlob(oci.repository, oci.config.digest), {
    digest: oci.config.digest,
    size: oci.config.size,
  })
  t.equal(
    await client.headBlob(oci.repository, `sha256:${'0'.repeat(64)}`),
    undefined,
    'missing blob is undefined',
  )
})

t.test('a manifest body altered in transit is detected as a digest mismatch', async (t) => {
  t.teardown(() => proxy.clearFaults())
  proxy.addFault({ fault: { kind: 'alter-body' }, method: 'GET', path: `/v2/${oci.repository}/manifests/` })
  await t.rejects(client.getManifest(oci.repository, 'v1'), {
    code: 'REGENT_DIGEST_MISMATCH',
    statusCode: 502,
  })
  await t.rejects(client.getManifest(oci.repository, oci.digest), { code: 'REGENT_DIGEST_MISMATCH' })
  proxy.addFault({ fault: { kind: 'alter-body' }, method: 'GET', path: `/v2/${oci.repository}/blobs/` })
  await t.rejects(client.getBlob(oci.repository, oci.config.digest), { code: 'REGENT_DIGEST_MISMATCH' })
})

t.test('a reset in the middle of a manifest body is retried and the GET succeeds', async (t) => {
  t.teardown(() => proxy.clearFaults())
  const path = `/v2/${docker.repository}/manifests/v1`
  const before = proxy.count('GET', path)
  proxy.addFault({ fault: { kind: 'reset-mid-body' }, method: 'GET', path, times: 1 })
  const got = await client.getManifest(docker.repository, 'v1')
  t.equal(got.digest, docker.digest)
  t.equal(proxy.count('GET', path) - before, 2, 'one reset attempt, one good one')
})

t.test('an unknown manifest is REGENT_REGISTRY_NOT_FOUND with the OCI code kept', async (t) => {
  await t.rejects(client.getManifest(oci.repository, 'no-such-tag'), {
    code: 'REGENT_REGISTRY_NOT_FOUND',
    statusCode: 404,
    registryStatus: 404,
    ociCode: 'MANIFEST_UNKNOWN',
    outcome: 'not_found',
  })
  t.equal(await client.headManifest(oci.repository, 'no-such-tag'), undefined)
})

t.test('putManifest refuses schema 1 and checks the digest it is pushed under', async (t) => {
  const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'v1', fsLayers: [] }))
  await t.rejects(client.putManifest(oci.repository, 'legacy', MediaTypes.DockerSchema1Signed, schema1), {
    code: 'REGENT_LEGACY_MANIFEST',
  })
  await t.rejects(client.putManifest(oci.repository, docker.digest, oci.mediaType, oci.bytes), {
    code: 'REGENT_DIGEST_MISMATCH',
  })
})

t.test('referrers fall back to the sha256-<hex> tag schema on distribution 2.8', async (t) => {
  const subject = await pushImage(client, 'fixtures/signed', { tags: ['v1'] })
  const none = await client.referrers(subject.repository, subject.digest)
  t.same(none, { via: 'tag-schema', referrers: [], tag: subject.digest.replace(':', '-') })
  const sbom = await pushArtifact(client, subject.repository, subject)
  const signature = await pushArtifact(
    client,
    subject.repository,
    subject,
    'application/vnd.example.signature',
  )
  await pushReferrersTag(client, subject.repository, subject.digest, [sbom, signature])
  const found = await client.referrers(subject.repository, subject.digest)
  t.equal(found.via, 'tag-schema')
  t.same(
    found.referrers.map((r) => [r.digest, r.artifactType]),
    [
      [sbom.digest, sbom.artifactType],
      [signature.digest, signature.artifactType],
    ],
  )
  const onlySignatures = await client.referrers(subject.repository, subject.digest, {
    artifactType: 'application/vnd.example.signature',
  })
  t.same(
    onlySignatures.referrers.map((r) => r.digest),
    [signature.digest],
  )
  const artifact = await client.getManifest(subject.repository, sbom.digest)
  if (artifact.manifest.kind !== 'image') return t.fail('artifact is an image manifest')
  t.equal(artifact.manifest.subject?.digest, subject.digest, 'subject kept')
  t.equal(artifact.manifest.artifactType, sbom.artifactType, 'artifactType kept')
})
