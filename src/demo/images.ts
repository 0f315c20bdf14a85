import { randomBytes } from 'node:crypto'
import { digestOf, type RegistryClient } from '../oci/index.js'
import { MediaTypes } from '../oci/media-types.js'

/**
 * The demo's images, pushed over the registry API: two teams' repositories with release tags, a
 * `latest` sharing its digest with a release, old feature branches, pull-request builds sharing a
 * digest with a branch (so a plan shows the sibling tag that would vanish too), and a multi-arch
 * index. Layers are random bytes (distribution checks digests, not tarballs) and each repository
 * has a base layer its images share, so a GC frees only what no remaining image uses.
 */

const DAY_MS = 86_400_000

interface ImageSpec {
  tags: string[]
  /** Days before now recorded as the image config's `created`. */
  ageDays: number
  /** Bytes of the layer only this image has. */
  ownLayerBytes: number
}

interface IndexSpec {
  tags: string[]
  ageDays: number
  platforms: { os: string; architecture: string; variant?: string }[]
  ownLayerBytes: number
}

interface RepositorySpec {
  name: string
  baseLayerBytes: number
  images: ImageSpec[]
  indexes?: IndexSpec[]
}

export const DEMO_REPOSITORIES: RepositorySpec[] = [
  {
    name: 'payments/api',
    baseLayerBytes: 512 * 1024,
    images: [
      { tags: ['1.0.0'], ageDays: 120, ownLayerBytes: 384 * 1024 },
      { tags: ['1.1.0', 'latest'], ageDays: 20, ownLayerBytes: 384 * 1024 },
      { tags: ['feature-login'], ageDays: 75, ownLayerBytes: 256 * 1024 },
      { tags: ['feature-cart', 'pr-102'], ageDays: 60, ownLayerBytes: 768 * 1024 },
      { tags: ['pr-101'], ageDays: 45, ownLayerBytes: 256 * 1024 },
      { tags: ['pr-103'], ageDays: 2, ownLayerBytes: 256 * 1024 },
    ],
  },
  {
    name: 'payments/worker',
    baseLayerBytes: 256 * 1024,
    images: [{ tags: ['1.9.0'], ageDays: 90, ownLayerBytes: 192 * 1024 }],
    indexes: [
      {
        tags: ['2.0.0', 'latest'],
        ageDays: 10,
        ownLayerBytes: 192 * 1024,
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
        ],
      },
    ],
  },
  {
    name: 'search/indexer',
    baseLayerBytes: 384 * 1024,
    images: [
      { tags: ['3.2.0', 'latest'], ageDays: 15, ownLayerBytes: 256 * 1024 },
      { tags: ['feature-ranking'], ageDays: 100, ownLayerBytes: 512 * 1024 },
      { tags: ['nightly-1'], ageDays: 3, ownLayerBytes: 128 * 1024 },
      { tags: ['nightly-2'], ageDays: 2, ownLayerBytes: 128 * 1024 },
      { tags: ['nightly-3'], ageDays: 1, ownLayerBytes: 128 * 1024 },
    ],
  },
  {
    name: 'search/web',
    baseLayerBytes: 256 * 1024,
    images: [
      { tags: ['1.0.0'], ageDays: 30, ownLayerBytes: 128 * 1024 },
      { tags: ['feature-dark-mode'], ageDays: 50, ownLayerBytes: 192 * 1024 },
    ],
  },
]

export interface DemoImages {
  repositories: number
  tags: number
  manifests: number
  bytes: number
}

/** Pushes every demo repository; returns what was pushed. */
export async function pushDemoImages(client: RegistryClient, now = Date.now()): Promise<DemoImages> {
  const totals: DemoImages = { repositories: 0, tags: 0, manifests: 0, bytes: 0 }
  for (const repository of DEMO_REPOSITORIES) {
    totals.repositories++
    const base = randomBytes(repository.baseLayerBytes)
    await client.pushBlob(repository.name, base)
    totals.bytes += base.length
    for (const image of repository.images) {
      const pushed = await pushImage(client, repository.name, base, image.ownLayerBytes, {
        created: new Date(now - image.ageDays * DAY_MS).toISOString(),
        platform: { os: 'linux', architecture: 'amd64' },
      })
      await tagManifest(client, repository.name, image.tags, MediaTypes.OciManifest, pushed.bytes)
      totals.tags += image.tags.length
      totals.manifests++
      totals.bytes += pushed.layerBytes + pushed.bytes.length
    }
    for (const index of repository.indexes ?? []) {
      const children = []
      for (const platform of index.platforms) {
        const child = await pushImage(client, repository.name, base, index.ownLayerBytes, {
          created: new Date(now - index.ageDays * DAY_MS).toISOString(),
          platform,
        })
        await client.putManifest(repository.name, child.digest, MediaTypes.OciManifest, child.bytes)
        children.push({
          mediaType: MediaTypes.OciManifest,
          digest: child.digest,
          size: child.bytes.length,
          platform,
        })
        totals.manifests++
        totals.bytes += child.layerBytes + child.bytes.length
      }
      const bytes = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.OciIndex, manifests: children }),
      )
      await tagManifest(client, repository.name, index.tags, MediaTypes.OciIndex, bytes)
      totals.tags += index.tags.length
      totals.manifests++
      totals.bytes += bytes.length
    }
  }
  return totals
}

async function pushImage(
  client: RegistryClient,
  repository: string,
  base: Buffer,
  ownLayerBytes: number,
  meta: { created: string; platform: { os: string; architecture: string; variant?: string } },
): Promise<{ digest: string; bytes: Buffer; layerBytes: number }> {
  const own = randomBytes(ownLayerBytes)
  await client.pushBlob(repository, own)
  const layers = [base, own].map((bytes) => ({
    mediaType: MediaTypes.OciLayerGzip,
    digest: sha256(bytes),
    size: bytes.length,
  }))
  const config = Buffer.from(
    JSON.stringify({
      created: meta.created,
      ...meta.platform,
      config: { Labels: { 'org.opencontainers.image.source': `https://example.com/${repository}` } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  )
  await client.pushBlob(repository, config)
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.OciManifest,
      config: { mediaType: MediaTypes.OciConfig, digest: sha256(config), size: config.length },
      layers,
    }),
  )
  return { digest: sha256(bytes), bytes, layerBytes: own.length + config.length }
}

async function tagManifest(
  client: RegistryClient,
  repository: string,
  tags: string[],
  mediaType: string,
  bytes: Buffer,
): Promise<void> {
  for (const tag of tags) await client.putManifest(repository, tag, mediaType, bytes)
}

function sha256(bytes: Buffer): string {
  return digestOf(bytes, 'sha256')
}
