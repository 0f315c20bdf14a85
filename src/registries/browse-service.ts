import type { Principal } from '../auth/principal.js'
import { errors } from '../errors.js'
import { SingleFlight } from '../lib/single-flight.js'
import { assertRepository, parseReference } from '../oci/index.js'
import {
  configView,
  descriptorView,
  groupTagsByDigest,
  type HistoryView,
  historyView,
  type Page,
  type PlatformView,
  sizeOf,
  type TagPage,
  type TagUsageLookup,
  type TagView,
} from './browse-views.js'
import type { ContentCache, TagDigestCache } from './content-cache.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { mapLimit } from './map-limit.js'
import {
  type Caller,
  RegistryReader,
  type RepositorySnapshot,
  type SnapshotOptions,
} from './registry-reader.js'
import type { RegistrySet } from './registry-set.js'

export type {
  HistoryView,
  Page,
  PlatformView,
  TagPage,
  TagUsage,
  TagUsageLookup,
  TagView,
} from './browse-views.js'
export { groupTagsByDigest } from './browse-views.js'
export type { RepositorySnapshot, SnapshotOptions } from './registry-reader.js'

export interface BrowseOptions {
  /** How many tags of one repository are resolved at once. */
  concurrency: number
  /** Repositories with more tags than this report `sharedWithComplete: false`. */
  siblingScanLimit: number
  /** Largest image config read (bytes). */
  maxConfigBytes: number
  probeTimeoutMs: number
}

/**
 * Browsing registries: what exists, what each tag points to, which tags share an image, how big and
 * how old it is. Plain data in, plain data out; REST routes and GraphQL resolvers are thin adapters.
 * Decisions (plans, execution, retention) read through the same caches with the methods at the end.
 */
export class BrowseService {
  private readonly reader: RegistryReader
  private readonly pages = new SingleFlight<TagPage>()
  private usage: TagUsageLookup | undefined

  constructor(
    private readonly registries: RegistrySet,
    content: ContentCache,
    tagDigests: TagDigestCache,
    private readonly options: BrowseOptions,
  ) {
    this.reader = new RegistryReader(registries, content, tagDigests, options)
  }

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
    const { client } = this.registries.get(registry)
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
      signal,
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
    // A caller that may give up (a GraphQL request with its timeout) computes its own page: once it
    // gives up, the page stops starting registry calls.
    if (signal) return this.tagPage(this.reader.caller(registry, signal), repository, query.limit, after)
    // The page is the same for every caller allowed to browse: callers asking for it at the same
    // time share one computation.
    const caller = this.reader.caller(registry)
    return this.pages.run(`${registry}\u0000${repository}\u0000${query.limit}\u0000${after ?? ''}`, () =>
      this.tagPage(caller, repository, query.limit, after),
    )
  }

  private async tagPage(
    caller: Caller,
    repository: string,
    limit: number,
    after: string | undefined,
  ): Promise<TagPage> {
    const query = { limit }
    const names = await this.reader.tagNames(caller, repository, false)
    const start = after === undefined ? 0 : names.findIndex((n) => n > after)
    const pageNames = start < 0 ? [] : names.slice(start, start + query.limit)
    const more = start >= 0 && start + query.limit < names.length

    // Which tags share a digest is a property of the whole repository, not of the page.
    const scanned = new Set(names.slice(0, this.options.siblingScanLimit))
    for (const name of pageNames) scanned.add(name)
    const heads = await this.reader.headTags(caller, repository, [...scanned])
    const tagsByDigest = groupTagsByDigest(heads)

    const items = await mapLimit(
      pageNames.filter((name) => heads.has(name)),
      this.options.concurrency,
      async (name) => {
        const head = heads.get(name)!
        const details = await this.reader.describe(caller, repository, head.digest)
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
      caller.target.config.name,
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
      dangling: await this.reader.stillListed(
        caller,
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
    const caller = this.reader.caller(registry, signal)
    assertRepository(repository)
    const ref = parseReference(reference)
    const digest =
      ref.kind === 'digest' ? ref.digest : (await this.reader.headTag(caller, repository, ref.tag)).digest
    const { mediaType, bytes, manifest } = await this.reader.manifest(caller, repository, digest)
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
      const config = await this.reader.imageConfig(caller, repository, manifest.config.digest)
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
      view.totalSize = (await this.reader.describe(caller, repository, digest)).size ?? null
    }
    if (manifest.kind !== 'legacy') {
      const found = await caller.target.client
        .referrers(repository, digest, { signal })
        .catch(() => undefined)
      if (found) view.referrers = { via: found.via, items: found.referrers.map(descriptorView) }
    }
    return view
  }

  /**
   * The bytes of many manifests of one repository, through the cache in one look-up; those it does
   * not hold are fetched. A digest the registry does not have is left out.
   */
  manifestBytesOf(
    registry: string,
    repository: string,
    digests: string[],
  ): Promise<Map<string, { mediaType: string; bytes: Buffer }>> {
    return this.reader.manifestBytesOf(this.reader.caller(registry), repository, digests)
  }

  /** A manifest by digest, parsed, through the cache (manifests never change for a digest). */
  manifestOf(registry: string, repository: string, digest: string) {
    return this.reader.manifest(this.reader.caller(registry), repository, digest)
  }

  /**
   * Every listed tag of a repository with what it resolves to, for decisions: plans (fresh, with
   * bodies), the verification before each wave of DELETEs (fresh), dry runs (cached answers up to
   * `tagTtlMs` old).
   */
  snapshotRepository(
    registry: string,
    repository: string,
    options: SnapshotOptions,
  ): Promise<RepositorySnapshot> {
    return this.reader.snapshotRepository(this.reader.caller(registry), repository, options)
  }

  /** Kind, size, `created` and platforms of a digest (retention judges images by `created`). */
  describeDigest(registry: string, repository: string, digest: string) {
    return this.reader.describe(this.reader.caller(registry), repository, digest)
  }
}

/** Browsing needs any role: an authenticated caller without one has been given nothing. */
function requireBrowse(principal: Principal): void {
  if (principal.roles.length === 0) throw new errors.FORBIDDEN('browsing needs at least the viewer role')
}
