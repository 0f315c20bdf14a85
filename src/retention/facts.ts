import type { GovernanceConfig, LegalHold } from '../governance/index.js'
import { protectionVerdict } from '../governance/index.js'
import type { Manifest } from '../oci/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import { mapLimit } from '../registries/map-limit.js'
import type { ActivityTimes, RepositoryActivity } from '../registry-events/index.js'
import type { ArtifactFacts } from './rules.js'

/**
 * What retention knows about one repository: every tagged digest with its tags, the untagged
 * manifests registry events told us about, their push, pull and created times (saying where each
 * came from), and which tags protections and legal holds shield. Nothing here decides anything.
 */

/** Registry events and tag sightings, as src/registry-events provides them. */
export interface ActivitySource {
  repositoryActivity(registry: string, repository: string): Promise<RepositoryActivity>
  recordSightings(
    registry: string,
    repository: string,
    tags: { tag: string; digest: string }[],
  ): Promise<Map<string, Date>>
}

export interface FactsContext {
  browse: BrowseService
  activity: ActivitySource
  governance: GovernanceConfig
  holds: LegalHold[]
  now: Date
  /** Fetch image configs for `created`: only when a rule judges by it. */
  needsCreated: boolean
  /** Registry calls in flight within one repository (`browse.concurrency`). */
  fanOut: number
}

export interface RepositoryFacts {
  repository: string
  artifacts: ArtifactFacts[]
  totalTags: number
  /** Blob digest → size for every manifest seen, and which blobs each artifact holds. */
  blobs: Map<string, Map<string, number>>
}

export async function gatherRepository(
  ctx: FactsContext,
  registry: string,
  repository: string,
): Promise<RepositoryFacts> {
  const snapshot = await ctx.browse.snapshotRepository(registry, repository, { fresh: true, bodies: true })
  const heads = snapshot.tags
  const tagsByDigest = snapshot.tagsByDigest
  const [firstSeen, activity] = await Promise.all([
    ctx.activity.recordSightings(
      registry,
      repository,
      [...heads].map(([tag, head]) => ({ tag, digest: head.digest })),
    ),
    ctx.activity.repositoryActivity(registry, repository),
  ])

  const manifests = new Map<string, Manifest>()
  const manifestOf = async (digest: string): Promise<Manifest | undefined> => {
    const known = manifests.get(digest)
    if (known) return known
    try {
      const { manifest } = await ctx.browse.manifestOf(registry, repository, digest)
      manifests.set(digest, manifest)
      return manifest
    } catch (err) {
      // An untagged digest from an old event may be gone already: nothing to decide about it.
      if ((err as { statusCode?: number }).statusCode === 404) return undefined
      throw err
    }
  }

  await mapLimit([...tagsByDigest.keys()], ctx.fanOut, manifestOf)
  // Untagged manifests are known only from push events: the registry API cannot list them.
  const untagged = [...activity.digests.keys()].filter((d) => !tagsByDigest.has(d))
  await mapLimit(untagged, ctx.fanOut, manifestOf)

  // Children of an index go with their index: never judged alone as "untagged garbage".
  const childOfIndex = new Set<string>()
  for (const manifest of manifests.values())
    if (manifest.kind === 'index') for (const child of manifest.manifests) childOfIndex.add(child.digest)
  const candidates = [
    ...tagsByDigest.keys(),
    ...untagged.filter((d) => manifests.has(d) && !childOfIndex.has(d)),
  ]

  const blobs = new Map<string, Map<string, number>>()
  const artifacts = await mapLimit(candidates, ctx.fanOut, async (digest): Promise<ArtifactFacts> => {
    const manifest = manifests.get(digest)
    const tags = (tagsByDigest.get(digest) ?? []).sort()
    const children = manifest?.kind === 'index' ? manifest.manifests.map((c) => c.digest) : []
    blobs.set(digest, await blobsOf(manifest, children, manifestOf))
    // A tag's events count only while the tag points at this digest: a tag pushed again onto a new
    // image starts fresh, and events about an image it pointed at before never age or keep this one.
    const tagTimes = tags
      .map((tag) => activity.tags.get(tag))
      .filter((t): t is ActivityTimes & { digest: string | null } => t?.digest === digest)
    const digestTimes = activity.digests.get(digest)
    const times = digestTimes ? [digestTimes, ...tagTimes] : tagTimes
    const pushedByEvents = latest(times.map((t) => t.lastPushAt ?? t.firstPushAt))
    const seen = earliest(tags.map((tag) => firstSeen.get(tag) ?? null))
    const created = ctx.needsCreated
      ? await ctx.browse
          .describeDigest(registry, repository, digest)
          .then((d) => (d.created ? new Date(d.created) : null))
          .catch(() => null)
      : null
    return {
      digest,
      tags,
      kind: manifest?.kind === 'index' ? 'index' : manifest?.kind === 'image' ? 'image' : 'other',
      children,
      pushedAt: pushedByEvents ?? seen ?? ctx.now,
      pushedSource: pushedByEvents ? 'events' : 'first-seen',
      createdAt: created && !Number.isNaN(created.getTime()) ? created : null,
      // Pulls are recorded per digest (a pull by tag names the digest it got); a tag's own pull
      // time counts only when it came after the tag's latest push, that is, for this digest.
      pulledAt: latest([
        digestTimes?.lastPullAt,
        ...tagTimes.map((t) =>
          t.lastPullAt && (!t.lastPushAt || t.lastPullAt >= t.lastPushAt) ? t.lastPullAt : null,
        ),
      ]),
      shielded: shieldsOf(ctx, registry, repository, digest, tags),
    }
  })
  return { repository, artifacts, totalTags: heads.size, blobs }
}

async function blobsOf(
  manifest: Manifest | undefined,
  children: string[],
  manifestOf: (digest: string) => Promise<Manifest | undefined>,
): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const add = (m: Manifest | undefined) => {
    if (m?.kind !== 'image') return
    for (const d of [m.config, ...m.layers]) out.set(d.digest, d.size)
  }
  add(manifest)
  for (const child of children) add(await manifestOf(child))
  return out
}

function shieldsOf(
  ctx: FactsContext,
  registry: string,
  repository: string,
  digest: string,
  tags: string[],
): ArtifactFacts['shielded'] {
  const shields: ArtifactFacts['shielded'] = []
  for (const tag of tags.length > 0 ? tags : [null]) {
    const verdict = protectionVerdict(
      ctx.governance,
      ctx.holds,
      { registry, repository, ...(tag ? { tag } : {}), digest },
      ctx.now,
    )
    if (verdict.level !== 'none')
      shields.push({ tag, reason: `${tag ?? digest} is ${verdict.level}: ${verdict.rule ?? ''}`.trim() })
  }
  return shields
}

function latest(dates: (Date | null | undefined)[]): Date | null {
  let best: Date | null = null
  for (const d of dates) if (d && (!best || d > best)) best = d
  return best
}

function earliest(dates: (Date | null | undefined)[]): Date | null {
  let best: Date | null = null
  for (const d of dates) if (d && (!best || d < best)) best = d
  return best
}
