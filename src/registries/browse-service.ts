import type { Principal } from '../auth/principal.js'
import { errors } from '../errors.js'
import { SingleFlight } from '../lib/single-flight.js'
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

/** Whether something runs or names a tag's image (set only when it does, or cannot be told). */
export interface TagUsage {
  status: 'in-use' | 'unknown'
  reason: string
}

/**
 * In-use awareness for tag answers, from the usage feature when it is present: one look-up per
 * page. It answers per tag: what runs or names the digest, or names this very tag.
 */
export type TagUsageLookup = (
  registry: string,
  repository: string,
  tags: { tag: string; digest: string }[],
) => Promise<Map<string, TagUsage>>

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
  inUse?: TagUsage
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export type TagPage = Page<TagView> & { sharedWithComplete: boolean; dangling: string[] }

/**
 * One repository as the registry shows it at one moment: every listed tag with what it resolves to
 * now. Plans are made from one, and execution takes a new one just before each wave of DELETEs.
 */
export interface RepositorySnapshot {
  registry: string
  repository: string
  /** When the tag listing was asked for: a tag pushed after this moment is not in the snapshot. */
  listedAt: Date
  tags: Map<string, TagHead>
  /**
   * Tags the registry lists that resolve to nothing (the manifest they point at is gone): left by
   * a registry that failed half-way through a delete. `untag` removes them.
   */
  dangling: string[]
  /** The tags pointing at each digest, sorted. */
  tagsByDigest: Map<string, string[]>
}

export interface SnapshotOptions {
  /**
   * Ask the registry for every tag now (plans that are stored, execution). false: answers up to
   * `tagTtlMs` old may be reused (browsing, dry runs).
   */
  fresh: boolean
  /**
   * GET every tag's manifest instead of HEAD: one call gives the digest and the bytes, which a plan
   * needs anyway (indexes, sizes). Bytes already cached make a HEAD enough on later passes.
   */
  bodies: boolean
}

export class BrowseService {
  private readonly listings = new SingleFlight<string[]>()
  private readonly listingCache = new Map<string, { names: string[]; expires: number }>()
  private readonly heads = new SingleFlight<TagHead | undefined>()
  private readonly pages = new SingleFlight<TagPage>()
  private usage: TagUsageLookup | undefined

  constructor(
    private readonly registries: RegistrySet,
    private readonly content: ContentCache,
    private readonly tagDigests: TagDigestCache,
    private readonly options: BrowseOptions,
  ) {}

  /** Tag answers say what is in use once a usage feature provides the look-up. */
  useUsage(lookup: TagUsageLookup): void {
    this.usage = lookup
  }

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
  ): Promise<TagPage> {
    requireBrowse(principal)
    assertRepository(repository)
    const after = decodeCursor(query.cursor, ['last'])?.last
    // A caller that may give up (a GraphQL request with its timeout) computes its own page, so its
    // abort stops only its own registry calls.
    if (signal)
      return this.tagPage(abortable(this.registries.get(registry), signal), repository, query.limit, after)
    // The page is the same for every caller allowed to browse: callers asking for it at the same
    // time share one computation.
    const target = this.registries.get(registry)
    return this.pages.run(`${registry}\u0000${repository}\u0000${query.limit}\u0000${after ?? ''}`, () =>
      this.tagPage(target, repository, query.limit, after),
    )
  }

  private async tagPage(
    target: ConfiguredRegistry,
    repository: string,
    limit: number,
    after: string | undefined,
  ): Promise<TagPage> {
    const query = { limit }
    const names = await this.tagNames(target, repository, false)
    const start = after === undefined ? 0 : names.findIndex((n) => n > after)
    const pageNames = start < 0 ? [] : names.slice(start, start + query.limit)
    const more = start >= 0 && start + query.limit < names.length

    // Which tags share a digest is a property of the whole repository, not of the page.
    const scanned = new Set(names.slice(0, this.options.siblingScanLimit))
    for (const name of pageNames) scanned.add(name)
    const heads = await this.headTags(target, repository, [...scanned])
    const tagsByDigest = groupTagsByDigest(heads)

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
    const usage = await this.usage?.(
      target.config.name,
      repository,
      items.map((item) => ({ tag: item.name, digest: item.digest })),
    )
    for (const item of items) {
      const inUse = usage?.get(item.name)
      if (inUse) (item as TagView).inUse = inUse
    }
    return {
      items,
      nextCursor: more ? encodeCursor({ last: pageNames.at(-1)! }) : null,
      sharedWithComplete: names.length <= this.options.siblingScanLimit,
      dangling: await this.stillListed(
        target,
        repository,
        pageNames.filter((name) => !heads.has(name)),
      ),
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

  /**
   * The bytes of many manifests of one repository, through the cache in one look-up; those it does
   * not hold are fetched. A digest the registry does not have is left out.
   */
  async manifestBytesOf(
    registry: string,
    repository: string,
    digests: string[],
  ): Promise<Map<string, { mediaType: string; bytes: Buffer }>> {
    const target = this.registries.get(registry)
    const found = await this.content.getMany(registry, repository, digests)
    const missing = digests.filter((digest) => !found.has(digest))
    await mapLimit(missing, this.options.concurrency, async (digest) => {
      const fetched = await this.manifest(target, repository, digest).catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined
        throw err
      })
      if (fetched) found.set(digest, { mediaType: fetched.mediaType, bytes: fetched.bytes })
    })
    return found
  }

  /** A manifest by digest, parsed, through the cache (manifests never change for a digest). */
  async manifestOf(registry: string, repository: string, digest: string) {
    return this.manifest(this.registries.get(registry), repository, digest)
  }

  /**
   * Every listed tag of a repository with what it resolves to, for decisions: plans (fresh, with
   * bodies), the verification before each wave of DELETEs (fresh), dry runs (cached answers up to
   * `tagTtlMs` old). A tag that vanishes between the listing and its look-up is left out; one the
   * registry still lists but cannot resolve is reported as dangling.
   */
  async snapshotRepository(
    registry: string,
    repository: string,
    options: SnapshotOptions,
  ): Promise<RepositorySnapshot> {
    const target = this.registries.get(registry)
    assertRepository(repository)
    const listedAt = new Date()
    const names = await this.tagNames(target, repository, options.fresh)
    const tags = new Map<string, TagHead>()
    const unresolved: string[] = []
    await mapLimit(names, this.options.concurrency, async (tag) => {
      const head = await this.resolveTag(target, repository, tag, options)
      if (head) tags.set(tag, head)
      else unresolved.push(tag)
    })
    const sorted = new Map([...tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    return {
      registry,
      repository,
      listedAt,
      tags: sorted,
      dangling: await this.stillListed(target, repository, unresolved),
      tagsByDigest: groupTagsByDigest(sorted),
    }
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
    const content = await this.content.get(
      { registry: target.config.name, repository, digest },
      'manifest',
      async () => {
        const fetched = await target.client.getManifest(repository, digest)
        return { mediaType: fetched.mediaType, bytes: fetched.bytes }
      },
    )
    // Parsed once per cached entry: browsing under load reads the same manifests over and over.
    content.parsed ??= parseManifest(content.bytes, content.mediaType)
    return { mediaType: content.mediaType, bytes: content.bytes, manifest: content.parsed as Manifest }
  }

  private async imageConfig(
    target: ConfiguredRegistry,
    repository: string,
    digest: string,
  ): Promise<ImageConfig> {
    const content = await this.content.get(
      { registry: target.config.name, repository, digest },
      'config',
      async () => ({
        mediaType: 'application/vnd.oci.image.config.v1+json',
        bytes: await target.client.getBlob(repository, digest, { maxBytes: this.options.maxConfigBytes }),
      }),
    )
    content.parsed ??= parseImageConfig(content.bytes)
    return content.parsed as ImageConfig
  }

  private async headTag(target: ConfiguredRegistry, repository: string, tag: string): Promise<TagHead> {
    const head = await this.resolveTag(target, repository, tag, { fresh: false, bodies: false })
    if (!head) throw new errors.TAG_NOT_FOUND(`${repository}:${tag}`, target.config.name)
    return head
  }

  /**
   * What a tag points at: from the short-lived tag cache unless `fresh`; else by HEAD, or by GET
   * when the bytes are wanted and not cached yet. Concurrent identical look-ups share one call.
   * undefined when the registry answers 404.
   */
  private async resolveTag(
    target: ConfiguredRegistry,
    repository: string,
    tag: string,
    options: SnapshotOptions,
  ): Promise<TagHead | undefined> {
    const registry = target.config.name
    if (!options.fresh) {
      const cached = this.tagDigests.get(registry, repository, tag)
      if (cached && (!options.bodies || this.content.peek({ registry, repository, digest: cached.digest })))
        return cached
    }
    const key = `${options.fresh ? 'fresh' : 'cached'}\u0000${options.bodies}\u0000${registry}\u0000${repository}\u0000${tag}`
    return this.heads.run(key, async () => {
      let head: TagHead | undefined
      if (options.bodies) {
        const got = await target.client.getManifest(repository, tag).catch((err: unknown) => {
          if ((err as { code?: string }).code === 'REGENT_REGISTRY_NOT_FOUND') return undefined
          throw err
        })
        if (got) {
          this.content.put({ registry, repository, digest: got.digest }, 'manifest', {
            mediaType: got.mediaType,
            bytes: got.bytes,
          })
          head = { digest: got.digest, mediaType: got.mediaType, size: got.size }
        }
      } else {
        const found = await target.client.headManifest(repository, tag)
        if (found) head = { digest: found.digest, mediaType: found.mediaType, size: found.size }
      }
      if (head) this.tagDigests.set(registry, repository, tag, head)
      return head
    })
  }

  /**
   * The tags of a repository, sorted. Browsing reuses a listing for `tagTtlMs`; decisions ask the
   * registry. Concurrent callers share one listing either way.
   */
  private async tagNames(target: ConfiguredRegistry, repository: string, fresh: boolean): Promise<string[]> {
    const id = `${target.config.name}\u0000${repository}`
    if (!fresh) {
      const cached = this.listingCache.get(id)
      if (cached && cached.expires > Date.now()) return cached.names
    }
    return this.listings.run(`${fresh}\u0000${id}`, async () => {
      const names: string[] = []
      for await (const name of target.client.tags(repository, { pageSize: 1000 })) names.push(name)
      names.sort()
      const ttl = this.tagDigests.ttl
      if (ttl > 0) {
        this.listingCache.set(id, { names, expires: Date.now() + ttl })
        if (this.listingCache.size > 10_000) this.listingCache.clear()
      }
      return names
    })
  }

  /**
   * Of tags that did not resolve, those the registry still lists (asked again, so a tag deleted
   * between the listing and its look-up is not taken for a broken one).
   */
  private async stillListed(
    target: ConfiguredRegistry,
    repository: string,
    tags: string[],
  ): Promise<string[]> {
    if (tags.length === 0) return []
    const listed = new Set(await this.tagNames(target, repository, true))
    return tags.filter((tag) => listed.has(tag)).sort()
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
  for (const [tag, head] of heads) {
    const list = byDigest.get(head.digest)
    if (list) list.push(tag)
    else byDigest.set(head.digest, [tag])
  }
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
