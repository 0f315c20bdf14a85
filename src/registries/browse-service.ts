import type { Principal } from '../auth/principal.js'
import { errors } from '../errors.js'
import {
  assertRepository,
  type Descriptor,
  type ImageConfig,
  type Manifest,
  parseImageConfig,
  parseManifest,
  parseReference,
} from '../oci/index.js'
import { abortable } from './abortable.js'
import type { ContentCache, TagDigestCache, TagHead } from './content-cache.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { mapLimit } from './map-limit.js'
import type { ConfiguredRegistry, RegistrySet } from './registry-set.js'

/**
 * Browsing registries: what exists, what each tag points to, which tags share an image, how big and
 * how old it is. Plain data in, plain data out; REST routes and GraphQL resolvers are thin adapters.
 */

export interface BrowseOptions {
  /** How many tags of one repository are resolved at once. */
  concurrency: number
  /** Repositories with more tags than this report `sharedWithComplete: false`. */
  siblingScanLimit: number
  /** Largest image config read (bytes). */
  maxConfigBytes: number
  probeTimeoutMs: number
}

export interface PlatformView {
  digest: string
  os?: string
  architecture?: string
  variant?: string
  size?: number
  created?: string
}

export interface TagView {
  name: string
  digest: string
  mediaType: string
  kind: 'image' | 'index' | 'legacy' | 'unknown'
  /** Config + layers; for an index, every distinct blob of its platforms. */
  size?: number
  created?: string
  platforms?: PlatformView[]
  sharedWith: string[]
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export class BrowseService {
  constructor(
    private readonly registries: RegistrySet,
    private readonly content: ContentCache,
    private readonly tagDigests: TagDigestCache,
    private readonly options: BrowseOptions,
  ) {}

  async listRegistries(principal: Principal) {
    requireBrowse(principal)
    return Promise.all(
      this.registries.list().map(async ({ config }) => {
        const caps = await this.registries.capabilities(config.name, this.options.probeTimeoutMs)
        return {
          name: config.name,
          kind: config.kind,
          url: config.url,
          health:
            caps === undefined
              ? ('unknown' as const)
              : caps.reachable
                ? ('ok' as const)
                : ('unreachable' as const),
          capabilities: caps
            ? {
                probedAt: caps.probedAt.toISOString(),
                authKind: caps.authKind ?? null,
                catalog: caps.catalog ?? null,
                deleteEnabled: caps.deleteEnabled ?? null,
                tagDelete: caps.tagDelete ?? null,
                referrersApi: caps.referrersApi ?? null,
                notes: caps.notes,
              }
            : null,
        }
      }),
    )
  }

  async listRepositories(
    principal: Principal,
    registry: string,
    query: { prefix?: string; limit: number; cursor?: string },
    signal?: AbortSignal,
  ): Promise<Page<{ name: string }>> {
    requireBrowse(principal)
    const { client } = abortable(this.registries.get(registry), signal)
    const after = decodeCursor(query.cursor, ['last'])?.last
    const prefix = query.prefix ?? ''
    // The catalog is sorted: start just before the prefix (a shorter string sorts first) and stop
    // at the first name past it, instead of walking the whole catalog.
    const last = after ?? (prefix.length > 1 ? prefix.slice(0, -1) : undefined)
    const items: { name: string }[] = []
    let more = false
    for await (const name of client.catalog({
      pageSize: Math.min(1000, query.limit + 1),
      ...(last ? { last } : {}),
    })) {
      if (after !== undefined && name <= after) continue
      if (!name.startsWith(prefix)) {
        if (name > prefix) break
        continue
      }
      if (items.length === query.limit) {
        more = true
        break
      }
      items.push({ name })
    }
    return { items, nextCursor: more ? encodeCursor({ last: items.at(-1)!.name }) : null }
  }

  async listTags(
    principal: Principal,
    registry: string,
    repository: string,
    query: { limit: number; cursor?: string },
    signal?: AbortSignal,
  ): Promise<Page<TagView> & { sharedWithComplete: boolean }> {
    requireBrowse(principal)
    const target = abortable(this.registries.get(registry), signal)
    assertRepository(repository)
    const after = decodeCursor(query.cursor, ['last'])?.last
    const names: string[] = []
    for await (const name of target.client.tags(repository, { pageSize: 1000 })) names.push(name)
    names.sort()
    const start = after === undefined ? 0 : names.findIndex((n) => n > after)
    const pageNames = start < 0 ? [] : names.slice(start, start + query.limit)
    const more = start >= 0 && start + query.limit < names.length

    // Which tags share a digest is a property of the whole repository, not of the page.
    const scanned = names.slice(0, this.options.siblingScanLimit)
    for (const name of pageNames) if (!scanned.includes(name)) scanned.push(name)
    const heads = await this.headTags(target, repository, scanned)
    const tagsByDigest = new Map<string, string[]>()
    for (const [name, head] of heads) {
      const list = tagsByDigest.get(head.digest) ?? []
      list.push(name)
      tagsByDigest.set(head.digest, list)
    }

    const items = await mapLimit(
      pageNames.filter((name) => heads.has(name)),
      this.options.concurrency,
      async (name) => {
        const head = heads.get(name)!
        const details = await this.describe(target, repository, head.digest)
        return {
          name,
          digest: head.digest,
          mediaType: head.mediaType,
          ...details,
          sharedWith: (tagsByDigest.get(head.digest) ?? []).filter((n) => n !== name),
        }
      },
    )
    return {
      items,
      nextCursor: more ? encodeCursor({ last: pageNames.at(-1)! }) : null,
      sharedWithComplete: names.length <= this.options.siblingScanLimit,
    }
  }

  async getManifest(
    principal: Principal,
    registry: string,
    repository: string,
    reference: string,
    signal?: AbortSignal,
  ) {
    requireBrowse(principal)
    const target = abortable(this.registries.get(registry), signal)
    assertRepository(repository)
    const ref = parseReference(reference)
    const digest =
      ref.kind === 'digest' ? ref.digest : (await this.headTag(target, repository, ref.tag)).digest
    const { mediaType, bytes, manifest } = await this.manifest(target, repository, digest)
    const view = {
      digest,
      mediaType,
      kind: manifest.kind,
      size: bytes.length,
      annotations: 'annotations' in manifest ? (manifest.annotations ?? {}) : {},
      subject: 'subject' in manifest && manifest.subject ? descriptorView(manifest.subject) : null,
      config: null as null | ReturnType<typeof configView>,
      layers: [] as ReturnType<typeof descriptorView>[],
      history: [] as HistoryView[],
      children: [] as (ReturnType<typeof descriptorView> & { platform: PlatformView | null })[],
      totalSize: null as number | null,
      referrers: null as null | { via: string; items: ReturnType<typeof descriptorView>[] },
    }
    if (manifest.kind === 'image') {
      const config = await this.imageConfig(target, repository, manifest.config.digest)
      view.config = configView(manifest.config, config)
      view.layers = manifest.layers.map(descriptorView)
      view.history = historyView(config, manifest.layers)
      view.totalSize = sizeOf(manifest.config, manifest.layers)
    } else if (manifest.kind === 'index') {
      view.children = manifest.manifests.map((child) => ({
        ...descriptorView(child),
        platform: child.platform
          ? {
              digest: child.digest,
              os: child.platform.os,
              architecture: child.platform.architecture,
              ...(child.platform.variant ? { variant: child.platform.variant } : {}),
            }
          : null,
      }))
      view.totalSize = (await this.describe(target, repository, digest)).size ?? null
    }
    if (manifest.kind !== 'legacy') {
      const found = await target.client.referrers(repository, digest).catch(() => undefined)
      if (found) view.referrers = { via: found.via, items: found.referrers.map(descriptorView) }
    }
    return view
  }

  /** A manifest by digest, parsed, through the cache (manifests never change for a digest). */
  async manifestOf(registry: string, repository: string, digest: string) {
    return this.manifest(this.registries.get(registry), repository, digest)
  }

  /**
   * Every tag of a repository with the digest a fresh HEAD (full Accept list) returns now, for
   * decisions that must not rest on a cached answer (plans, execution). A tag that disappears
   * between the listing and its HEAD is left out.
   */
  async snapshotTags(registry: string, repository: string): Promise<Map<string, TagHead>> {
    const target = this.registries.get(registry)
    assertRepository(repository)
    const names: string[] = []
    for await (const name of target.client.tags(repository, { pageSize: 1000 })) names.push(name)
    const heads = new Map<string, TagHead>()
    await mapLimit(names.sort(), this.options.concurrency, async (tag) => {
      const head = await target.client.headManifest(repository, tag)
      if (!head) return
      const value = { digest: head.digest, mediaType: head.mediaType, size: head.size }
      this.tagDigests.set(registry, repository, tag, value)
      heads.set(tag, value)
    })
    return heads
  }

  /** Kind, size, `created` and platforms of a digest (retention judges images by `created`). */
  async describeDigest(registry: string, repository: string, digest: string) {
    return this.describe(this.registries.get(registry), repository, digest)
  }

  /** Size, age and platforms of what a digest points to; every fetch goes through the cache. */
  private async describe(
    target: ConfiguredRegistry,
    repository: string,
    digest: string,
  ): Promise<Pick<TagView, 'kind' | 'size' | 'created' | 'platforms'>> {
    const { manifest } = await this.manifest(target, repository, digest)
    if (manifest.kind === 'image') {
      const config = await this.imageConfig(target, repository, manifest.config.digest)
      return {
        kind: 'image',
        size: sizeOf(manifest.config, manifest.layers),
        ...(config.created ? { created: config.created } : {}),
      }
    }
    if (manifest.kind === 'index') {
      const blobs = new Map<string, number>()
      const platforms = await mapLimit(manifest.manifests, 4, async (child): Promise<PlatformView> => {
        const base = {
          digest: child.digest,
          ...(child.platform ? { os: child.platform.os, architecture: child.platform.architecture } : {}),
          ...(child.platform?.variant ? { variant: child.platform.variant } : {}),
        }
        const { manifest: inner } = await this.manifest(target, repository, child.digest)
        if (inner.kind !== 'image') return base
        const config = await this.imageConfig(target, repository, inner.config.digest)
        for (const d of [inner.config, ...inner.layers]) blobs.set(d.digest, d.size)
        return {
          ...base,
          size: sizeOf(inner.config, inner.layers),
          ...(config.created ? { created: config.created } : {}),
        }
      })
      const created = platforms
        .map((p) => p.created)
        .filter((c): c is string => c !== undefined)
        .sort()
        .at(-1)
      return {
        kind: 'index',
        size: [...blobs.values()].reduce((a, b) => a + b, 0),
        platforms,
        ...(created ? { created } : {}),
      }
    }
    return { kind: manifest.kind === 'legacy' ? 'legacy' : 'unknown' }
  }

  private async manifest(
    target: ConfiguredRegistry,
    repository: string,
    digest: string,
  ): Promise<{ mediaType: string; bytes: Buffer; manifest: Manifest }> {
    const { mediaType, bytes } = await this.content.get(
      { registry: target.config.name, repository, digest },
      'manifest',
      async () => {
        const fetched = await target.client.getManifest(repository, digest)
        return { mediaType: fetched.mediaType, bytes: fetched.bytes }
      },
    )
    return { mediaType, bytes, manifest: parseManifest(bytes, mediaType) }
  }

  private async imageConfig(
    target: ConfiguredRegistry,
    repository: string,
    digest: string,
  ): Promise<ImageConfig> {
    const { bytes } = await this.content.get(
      { registry: target.config.name, repository, digest },
      'config',
      async () => ({
        mediaType: 'application/vnd.oci.image.config.v1+json',
        bytes: await target.client.getBlob(repository, digest, { maxBytes: this.options.maxConfigBytes }),
      }),
    )
    return parseImageConfig(bytes)
  }

  private async headTag(target: ConfiguredRegistry, repository: string, tag: string): Promise<TagHead> {
    const cached = this.tagDigests.get(target.config.name, repository, tag)
    if (cached) return cached
    const head = await target.client.headManifest(repository, tag)
    if (!head) throw new errors.TAG_NOT_FOUND(`${repository}:${tag}`, target.config.name)
    const value = { digest: head.digest, mediaType: head.mediaType, size: head.size }
    this.tagDigests.set(target.config.name, repository, tag, value)
    return value
  }

  /** Digests of many tags; a tag deleted between listing and HEAD is left out. */
  private async headTags(
    target: ConfiguredRegistry,
    repository: string,
    tags: string[],
  ): Promise<Map<string, TagHead>> {
    const heads = new Map<string, TagHead>()
    await mapLimit(tags, this.options.concurrency, async (tag) => {
      try {
        heads.set(tag, await this.headTag(target, repository, tag))
      } catch (err) {
        if ((err as { code?: string }).code !== 'REGENT_TAG_NOT_FOUND') throw err
      }
    })
    return heads
  }
}

/** The tags pointing at each digest, in the order of `heads`. */
export function groupTagsByDigest(heads: Map<string, TagHead>): Map<string, string[]> {
  const byDigest = new Map<string, string[]>()
  for (const [tag, head] of heads) byDigest.set(head.digest, [...(byDigest.get(head.digest) ?? []), tag])
  return byDigest
}

/** Browsing needs any role: an authenticated caller without one has been given nothing. */
function requireBrowse(principal: Principal): void {
  if (principal.roles.length === 0) throw new errors.FORBIDDEN('browsing needs at least the viewer role')
}

function sizeOf(config: Descriptor, layers: Descriptor[]): number {
  return config.size + layers.reduce((sum, layer) => sum + layer.size, 0)
}

function descriptorView(d: Descriptor) {
  return {
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  }
}

function configView(descriptor: Descriptor, config: ImageConfig) {
  return {
    digest: descriptor.digest,
    size: descriptor.size,
    ...(config.os ? { os: config.os } : {}),
    ...(config.architecture ? { architecture: config.architecture } : {}),
    ...(config.variant ? { variant: config.variant } : {}),
    ...(config.created ? { created: config.created } : {}),
    ...(config.author ? { author: config.author } : {}),
    labels: config.labels,
  }
}

export interface HistoryView {
  created?: string
  createdBy?: string
  comment?: string
  emptyLayer: boolean
  size: number
  layerDigest?: string
}

/**
 * `docker history`: every history entry, newest last as in the config; entries that made a layer
 * take that layer's size in order, empty ones (ENV, CMD, …) are 0 bytes.
 */
function historyView(config: ImageConfig, layers: Descriptor[]): HistoryView[] {
  let next = 0
  return config.history.map((entry) => {
    const layer = entry.emptyLayer ? undefined : layers[next++]
    return {
      ...(entry.created ? { created: entry.created } : {}),
      ...(entry.createdBy ? { createdBy: entry.createdBy } : {}),
      ...(entry.comment ? { comment: entry.comment } : {}),
      emptyLayer: entry.emptyLayer,
      size: layer?.size ?? 0,
      ...(layer ? { layerDigest: layer.digest } : {}),
    }
  })
}
