import { manifestKindOf } from '../oci/index.js'
import type { BrowseService, RepositorySnapshot, SnapshotOptions } from '../registries/browse-service.js'
import { mapLimit } from '../registries/map-limit.js'

/**
 * What a deletion decision needs to know about one repository at one moment: every listed tag and
 * what it resolves to, and which manifests every tagged index lists. Plans are made from one;
 * execution takes a new one before each wave of DELETEs and compares it with what was approved.
 */
export interface RepositoryState {
  snapshot: RepositorySnapshot
  /** The manifests each tagged index lists, by the index's digest. */
  indexChildren: Map<string, string[]>
}

/** Index manifests fetched at once (most come from the content cache: a digest never changes). */
const INDEX_FANOUT = 8

export async function loadRepositoryState(
  browse: BrowseService,
  registry: string,
  repository: string,
  options: SnapshotOptions,
): Promise<RepositoryState> {
  const snapshot = await browse.snapshotRepository(registry, repository, options)
  const indexes = [...snapshot.tagsByDigest.keys()].filter((digest) => {
    const tag = snapshot.tagsByDigest.get(digest)![0]!
    return manifestKindOf(snapshot.tags.get(tag)?.mediaType) === 'index'
  })
  const indexChildren = new Map<string, string[]>()
  await mapLimit(indexes, INDEX_FANOUT, async (digest) => {
    const { manifest } = await browse.manifestOf(registry, repository, digest)
    if (manifest.kind === 'index')
      indexChildren.set(
        digest,
        manifest.manifests.map((child) => child.digest),
      )
  })
  return { snapshot, indexChildren }
}

/** Tags pointing at the digest now, sorted. */
export function tagsOf(state: RepositoryState, digest: string): string[] {
  return state.snapshot.tagsByDigest.get(digest) ?? []
}

/** The tagged indexes (except those in `ignoring`) that list `digest`, with their tags. */
export function indexesUsing(
  state: RepositoryState,
  digest: string,
  ignoring: ReadonlySet<string> = new Set(),
): { digest: string; tags: string[] }[] {
  const found: { digest: string; tags: string[] }[] = []
  for (const [index, children] of state.indexChildren) {
    if (ignoring.has(index) || !children.includes(digest)) continue
    found.push({ digest: index, tags: tagsOf(state, index) })
  }
  return found
}
