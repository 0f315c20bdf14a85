import { createHash, randomBytes } from 'node:crypto'
import type { RegistryClient } from '../../src/oci/client.js'
import { MediaTypes } from '../../src/oci/media-types.js'

/**
 * Test images pushed over the registry API with the client's own pushBlob/putManifest. Layers are
 * random bytes (distribution only checks their digest, not that they are tarballs), so the
 * uncompressed-layer digests in `rootfs.diff_ids` equal the layer digests. Every function returns
 * the digests and sizes it computed from the bytes it sent, for tests to compare against.
 */

export interface PlatformSpec {
  os: string
  architecture: string
  variant?: string
}

export interface PushedBlob {
  digest: string
  size: number
  mediaType: string
}

export interface PushedImage {
  repository: string
  tags: string[]
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  config: PushedBlob & { bytes: Buffer; created: string }
  layers: PushedBlob[]
  platform: PlatformSpec
}

export interface PushedIndex {
  repository: string
  tags: string[]
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  children: PushedImage[]
}

export interface ImageSpec {
  tags?: string[]
  /** `docker` → Docker v2 schema 2; `oci` → OCI image manifest (default). */
  format?: 'docker' | 'oci'
  platform?: PlatformSpec
  layers?: number
  /** Bytes per layer; a few hundred by default. */
  layerBytes?: number
  created?: string
  labels?: Record<string, string>
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

export async function pushImage(
  client: RegistryClient,
  repository: string,
  spec: ImageSpec = {},
): Promise<PushedImage> {
  const format = spec.format ?? 'oci'
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' }
  const types = format === 'oci' ? OCI : DOCKER
  const layerBlobs: PushedBlob[] = []
  for (let i = 0; i < (spec.layers ?? 2); i++) {
    const bytes = randomBytes((spec.layerBytes ?? 200) + Math.floor(Math.random() * 200))
    const pushed = await client.pushBlob(repository, bytes)
    layerBlobs.push({ digest: pushed.digest, size: pushed.size, mediaType: types.layer })
  }
  const created = spec.created ?? new Date().toISOString()
  const configBytes = imageConfig(platform, created, layerBlobs, spec.labels ?? {})
  const config = await client.pushBlob(repository, configBytes)
  const manifest = {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: config.digest, size: config.size },
    layers: layerBlobs.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  const digest = sha256(bytes)
  const tags = spec.tags ?? []
  await putUnder(client, repository, types.manifest, bytes, tags.length > 0 ? tags : [digest])
  return {
    repository,
    tags,
    digest,
    mediaType: types.manifest,
    size: bytes.length,
    bytes,
    config: {
      digest: config.digest,
      size: config.size,
      mediaType: types.config,
      bytes: configBytes,
      created,
    },
    layers: layerBlobs,
    platform,
  }
}

export interface IndexSpec {
  tags?: string[]
  /** `oci` → OCI image index of OCI manifests (default); `docker` → Docker manifest list. */
  format?: 'docker' | 'oci'
  platforms?: PlatformSpec[]
}

/** A multi-platform index whose children are pushed by digest only (untagged). */
export async function pushIndex(
  client: RegistryClient,
  repository: string,
  spec: IndexSpec = {},
): Promise<PushedIndex> {
  const format = spec.format ?? 'oci'
  const platforms = spec.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ]
  const children: PushedImage[] = []
  for (const platform of platforms) children.push(await pushImage(client, repository, { format, platform }))
  const mediaType = format === 'oci' ? MediaTypes.OciIndex : MediaTypes.DockerManifestList
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({
      mediaType: c.mediaType,
      digest: c.digest,
      size: c.size,
      platform: c.platform,
    })),
  }
  const bytes = Buffer.from(JSON.stringify(index))
  const digest = sha256(bytes)
  const tags = spec.tags ?? []
  await putUnder(client, repository, mediaType, bytes, tags.length > 0 ? tags : [digest])
  return { repository, tags, digest, mediaType, size: bytes.length, bytes, children }
}

/** PUTs one manifest under many tags with bounded concurrency. */
export async function tagManifest(
  client: RegistryClient,
  repository: string,
  image: { mediaType: string; bytes: Buffer },
  tags: string[],
  concurrency = 8,
): Promise<void> {
  await putUnder(client, repository, image.mediaType, image.bytes, tags, concurrency)
}

/** One image under `count` tags named `<prefix><zero-padded i>` (sorted order = push order). */
export async function pushManyTags(
  client: RegistryClient,
  repository: string,
  count: number,
  opts: { prefix?: string; concurrency?: number } = {},
): Promise<{ image: PushedImage; tags: string[] }> {
  const width = String(count - 1).length
  const tags = Array.from(
    { length: count },
    (_, i) => `${opts.prefix ?? 't'}${String(i).padStart(width, '0')}`,
  )
  const image = await pushImage(client, repository, { tags: tags.slice(0, 1) })
  await tagManifest(client, repository, image, tags.slice(1), opts.concurrency ?? 8)
  image.tags = tags
  return { image, tags }
}

/** `count` repositories `<prefix>-<zero-padded i>`, each with one small tagged image. */
export async function pushRepositories(
  client: RegistryClient,
  count: number,
  opts: { prefix?: string; concurrency?: number } = {},
): Promise<string[]> {
  const width = String(count - 1).length
  const names = Array.from(
    { length: count },
    (_, i) => `${opts.prefix ?? 'repo'}-${String(i).padStart(width, '0')}`,
  )
  await inParallel(names, opts.concurrency ?? 4, (name) =>
    pushImage(client, name, { tags: ['latest'], layers: 1 }),
  )
  return names
}

/** An OCI artifact (signature, SBOM…) whose `subject` is `subject`, pushed by digest. */
export async function pushArtifact(
  client: RegistryClient,
  repository: string,
  subject: { digest: string; size: number; mediaType: string },
  artifactType = 'application/vnd.example.sbom.v1+json',
): Promise<PushedBlob & { bytes: Buffer; artifactType: string }> {
  const empty = await client.pushBlob(repository, Buffer.from('{}'))
  const layer = await client.pushBlob(
    repository,
    Buffer.from(JSON.stringify({ sbom: randomBytes(8).toString('hex') })),
  )
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    artifactType,
    config: { mediaType: MediaTypes.OciEmpty, digest: empty.digest, size: empty.size },
    layers: [{ mediaType: 'application/json', digest: layer.digest, size: layer.size }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  const digest = sha256(bytes)
  await client.putManifest(repository, digest, MediaTypes.OciManifest, bytes)
  return { digest, size: bytes.length, mediaType: MediaTypes.OciManifest, bytes, artifactType }
}

/**
 * What a client does on a registry without the referrers API (OCI 1.1 §Pushing manifests with
 * subject): keep an index of the referrers under the tag `sha256-<hex>` of the subject.
 */
export async function pushReferrersTag(
  client: RegistryClient,
  repository: string,
  subjectDigest: string,
  referrers: Array<PushedBlob & { artifactType: string }>,
): Promise<{ tag: string; digest: string }> {
  const index = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciIndex,
    manifests: referrers.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      artifactType: r.artifactType,
    })),
  }
  const bytes = Buffer.from(JSON.stringify(index))
  const tag = subjectDigest.replace(':', '-')
  await client.putManifest(repository, tag, MediaTypes.OciIndex, bytes)
  return { tag, digest: sha256(bytes) }
}

const OCI = { manifest: MediaTypes.OciManifest, config: MediaTypes.OciConfig, layer: MediaTypes.OciLayerGzip }
const DOCKER = {
  manifest: MediaTypes.DockerManifest,
  config: MediaTypes.DockerConfig,
  layer: MediaTypes.DockerLayerGzip,
}

function imageConfig(
  platform: PlatformSpec,
  created: string,
  layers: PushedBlob[],
  labels: Record<string, string>,
): Buffer {
  const config = {
    created,
    author: 'regent tests',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Labels: { 'org.opencontainers.image.source': 'https://example.invalid/regent', ...labels },
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: [
      ...layers.map((_, i) => ({
        created,
        created_by: `/bin/sh -c #(nop) ADD file:layer-${i} in /`,
        comment: `layer ${i}`,
      })),
      { created, created_by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', empty_layer: true },
    ],
  }
  return Buffer.from(JSON.stringify(config))
}

async function putUnder(
  client: RegistryClient,
  repository: string,
  mediaType: string,
  bytes: Buffer,
  references: string[],
  concurrency = 8,
): Promise<void> {
  await inParallel(references, concurrency, (ref) => client.putManifest(repository, ref, mediaType, bytes))
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function inParallel<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T
      await work(item)
    }
  })
  await Promise.all(lanes)
}
