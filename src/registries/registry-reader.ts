import { errors } from '../errors.js'
import { SingleFlight } from '../lib/single-flight.js'
import {
  assertRepository,
  type ImageConfig,
  type Manifest,
  parseImageConfig,
  parseManifest,
  untilAborted,
} from '../oci/index.js'
import { groupTagsByDigest, type PlatformView, sizeOf, type TagView } from './browse-views.js'
import type { ContentCache, TagDigestCache, TagHead } from './content-cache.js'
import { mapLimit } from './map-limit.js'
import type { ConfiguredRegistry, RegistrySet } from './registry-set.js'

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

/**
 * Who is asking: the registry, and the signal of a caller that may give up (a GraphQL request with
 * its timeout). Without a signal the caller waits for every answer.
 */
export interface Caller {
  target: ConfiguredRegistry
  signal?: AbortSignal | undefined
}

export interface ReaderOptions {
  /** How many tags of one repository are resolved at once. */
  concurrency: number
  /** Largest image config read (bytes). */
  maxConfigBytes: number
}

/**
 * The registry reads browsing and decisions share: tag listings, what a tag points at, manifests
 * and image configs, through the caches. Concurrent callers asking for the same thing share one
 * registry call. Shared work runs without any one caller's signal: a caller that gives up stops
 * waiting and starts nothing new, while the call it joined finishes for the others, so one
 * caller's timeout never becomes another caller's error.
 */
export class RegistryReader {
  private readonly listings = new SingleFlight<string[]>()
  private readonly listingCache = new Map<string, { names: string[]; expires: number }>()
  private readonly heads = new SingleFlight<TagHead | undefined>()

  constructor(
    readonly registries: RegistrySet,
    private readonly content: ContentCache,
    private readonly tagDigests: TagDigestCache,
    private readonly options: ReaderOptions,
  ) {}

  caller(registry: string, signal?: AbortSignal): Caller {
    return { target: this.registries.get(registry), signal }
  }

  /**
   * Every listed tag of a repository with what it resolves to, for decisions: plans (fresh, with
   * bodies), the verification before each wave of DELETEs (fresh), dry runs (cached answers up to
   * `tagTtlMs` old). A tag that vanishes between the listing and its look-up is left out; one the
   * registry still lists but cannot resolve is reported as dangling.
   */
  async snapshotRepository(
    caller: Caller,
    repository: string,
    options: SnapshotOptions,
  ): Promise<RepositorySnapshot> {
    assertRepository(repository)
    const listedAt = new Date()
    const names = await this.tagNames(caller, repository, options.fresh)
    const tags = new Map<string, TagHead>()
    const unresolved: string[] = []
    await mapLimit(names, this.options.concurrency, async (tag) => {
      const head = await this.resolveTag(caller, repository, tag, options)
      if (head) tags.set(tag, head)
      else unresolved.push(tag)
    })
    const sorted = new Map([...tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    return {
      registry: caller.target.config.name,
      repository,
      listedAt,
      tags: sorted,
      dangling: await this.stillListed(caller, repository, unresolved),
      tagsByDigest: groupTagsByDigest(sorted),
    }
  }

  /**
   * The bytes of many manifests of one repository, through the cache in one look-up; those it does
   * not hold are fetched. A digest the registry does not have is left out.
   */
  async manifestBytesOf(
    caller: Caller,
    repository: string,
    digests: string[],
  ): Promise<Map<string, { mediaType: string; bytes: Buffer }>> {
    const found = await this.content.getMany(caller.target.config.name, repository, digests)
    const missing = digests.filter((digest) => !found.has(digest))
    await mapLimit(missing, this.options.concurrency, async (digest) => {
      const fetched = await this.manifest(caller, repository, digest).catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined
        throw err
      })
      if (fetched) found.set(digest, { mediaType: fetched.mediaType, bytes: fetched.bytes })
    })
    return found
  }

  /** Size, age and platforms of what a digest points to; every fetch goes through the cache. */
  async describe(
    caller: Caller,
    repository: string,
    digest: string,
  ): Promise<Pick<TagView, 'kind' | 'size' | 'created' | 'platforms'>> {
    const { manifest } = await this.manifest(caller, repository, digest)
    if (manifest.kind === 'image') {
      const config = await this.imageConfig(caller, repository, manifest.config.digest)
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
        const { manifest: inner } = await this.manifest(caller, repository, child.digest)
        if (inner.kind !== 'image') return base
        const config = await this.imageConfig(caller, repository, inner.config.digest)
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

  /** A manifest by digest, parsed, through the cache (manifests never change for a digest). */
  async manifest(
    caller: Caller,
    repository: string,
    digest: string,
  ): Promise<{ mediaType: string; bytes: Buffer; manifest: Manifest }> {
    const { target } = caller
    const content = await joined(caller, () =>
      this.content.get({ registry: target.config.name, repository, digest }, 'manifest', async () => {
        const fetched = await target.client.getManifest(repository, digest)
        return { mediaType: fetched.mediaType, bytes: fetched.bytes }
      }),
    )
    // Parsed once per cached entry: browsing under load reads the same manifests over and over.
    content.parsed ??= parseManifest(content.bytes, content.mediaType)
    return { mediaType: content.mediaType, bytes: content.bytes, manifest: content.parsed as Manifest }
  }

  async imageConfig(caller: Caller, repository: string, digest: string): Promise<ImageConfig> {
    const { target } = caller
    const content = await joined(caller, () =>
      this.content.get({ registry: target.config.name, repository, digest }, 'config', async () => ({
        mediaType: 'application/vnd.oci.image.config.v1+json',
        bytes: await target.client.getBlob(repository, digest, { maxBytes: this.options.maxConfigBytes }),
      })),
    )
    content.parsed ??= parseImageConfig(content.bytes)
    return content.parsed as ImageConfig
  }

  async headTag(caller: Caller, repository: string, tag: string): Promise<TagHead> {
    const head = await this.resolveTag(caller, repository, tag, { fresh: false, bodies: false })
    if (!head) throw new errors.TAG_NOT_FOUND(`${repository}:${tag}`, caller.target.config.name)
    return head
  }

  /** Digests of many tags; a tag deleted between listing and HEAD is left out. */
  async headTags(caller: Caller, repository: string, tags: string[]): Promise<Map<string, TagHead>> {
    const heads = new Map<string, TagHead>()
    await mapLimit(tags, this.options.concurrency, async (tag) => {
      try {
        heads.set(tag, await this.headTag(caller, repository, tag))
      } catch (err) {
        if ((err as { code?: string }).code !== 'REGENT_TAG_NOT_FOUND') throw err
      }
    })
    return heads
  }

  /**
   * What a tag points at: from the short-lived tag cache unless `fresh`; else by HEAD, or by GET
   * when the bytes are wanted and not cached yet. Concurrent identical look-ups share one call.
   * undefined when the registry answers 404.
   */
  async resolveTag(
    caller: Caller,
    repository: string,
    tag: string,
    options: SnapshotOptions,
  ): Promise<TagHead | undefined> {
    const { target } = caller
    const registry = target.config.name
    if (!options.fresh) {
      const cached = this.tagDigests.get(registry, repository, tag)
      if (cached && (!options.bodies || this.content.peek({ registry, repository, digest: cached.digest })))
        return cached
    }
    const key = `${options.fresh ? 'fresh' : 'cached'}\u0000${options.bodies}\u0000${registry}\u0000${repository}\u0000${tag}`
    return joined(caller, () =>
      this.heads.run(key, async () => {
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
      }),
    )
  }

  /**
   * The tags of a repository, sorted. Browsing reuses a listing for `tagTtlMs`; decisions ask the
   * registry. Concurrent callers share one listing either way.
   */
  async tagNames(caller: Caller, repository: string, fresh: boolean): Promise<string[]> {
    const { target } = caller
    const id = `${target.config.name}\u0000${repository}`
    if (!fresh) {
      const cached = this.listingCache.get(id)
      if (cached && cached.expires > Date.now()) return cached.names
    }
    return joined(caller, () =>
      this.listings.run(`${fresh}\u0000${id}`, async () => {
        const names: string[] = []
        for await (const name of target.client.tags(repository, { pageSize: 1000 })) names.push(name)
        names.sort()
        const ttl = this.tagDigests.ttl
        if (ttl > 0) {
          this.listingCache.set(id, { names, expires: Date.now() + ttl })
          if (this.listingCache.size > 10_000) this.listingCache.clear()
        }
        return names
      }),
    )
  }

  /**
   * Of tags that did not resolve, those the registry still lists (asked again, so a tag deleted
   * between the listing and its look-up is not taken for a broken one).
   */
  async stillListed(caller: Caller, repository: string, tags: string[]): Promise<string[]> {
    if (tags.length === 0) return []
    const listed = new Set(await this.tagNames(caller, repository, true))
    return tags.filter((tag) => listed.has(tag)).sort()
  }
}

/**
 * The caller's wait for shared work. Nothing is started for a caller that has already given up;
 * once it gives up, it stops waiting at once with its own reason.
 */
async function joined<T>(caller: Caller, start: () => Promise<T>): Promise<T> {
  caller.signal?.throwIfAborted()
  return untilAborted(start(), caller.signal)
}
