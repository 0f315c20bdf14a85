import { compileTagPattern, owningTeams, protectionVerdict } from '../governance/index.js'
import {
  type Capabilities,
  type Descriptor,
  isDigest,
  type Manifest,
  MediaTypes,
  type RegistryClient,
  referrersTag,
} from '../oci/index.js'
import { placeholderFor } from './placeholder.js'
import type { KeptManifest, Plan, PlanContext, PlanItem, PlanProblem, Target, Verb } from './plan.js'
import { indexesUsing, loadRepositoryState, type RepositoryState, tagsOf } from './repository-state.js'
import { applyUsageToPlan } from './usage-check.js'

/**
 * One repository's part of a plan: the items, what stays and why, the problems that make the
 * request impossible as asked, and the repository's share for the approval rules.
 */
export interface RepositoryPlanContext extends PlanContext {
  registry: string
  verb: Verb
  caps: Capabilities
  client: RegistryClient
}

export interface RepositoryPlan {
  items: PlanItem[]
  problems: PlanProblem[]
  warnings: string[]
  kept: KeptManifest[]
  bytes: number
  summary: Plan['repositories'][number]
}

interface Named {
  tag: string | null
  digest: string
  mediaType: string
  dangling: boolean
}

const LEVEL_ORDER = { none: 0, 'admin-only': 1, immutable: 2, held: 3 } as const

export async function planRepository(
  ctx: RepositoryPlanContext,
  repository: string,
  targets: Target[],
): Promise<RepositoryPlan> {
  const state = await loadRepositoryState(ctx.browse, ctx.registry, repository, {
    fresh: ctx.fresh,
    bodies: true,
  })
  const out: RepositoryPlan = {
    items: [],
    problems: [],
    warnings: [],
    kept: [],
    bytes: 0,
    summary: { repository, totalTags: 0, itemsInRepo: 0, owningTeams: [] },
  }
  const named = resolveTargets(ctx.verb, repository, targets, state, out.problems)
  if (ctx.verb === 'untag') {
    out.items = untagItems(ctx, repository, named, state, out.warnings)
  } else {
    out.items = await manifestItems(ctx, repository, named, state)
    if (ctx.verb === 'delete-image') {
      const namedTags = new Set(named.flatMap((n) => (n.tag ? [n.tag] : [])))
      await addDependents(ctx, repository, state, out, namedTags)
    } else {
      await warnAboutReferrers(ctx, repository, state, out)
    }
    for (const item of out.items) {
      if ((await manifestOf(ctx, repository, item.digest)).kind === 'legacy') {
        out.problems.push({
          code: 'REGENT_LEGACY_TARGET',
          message: `${repository}@${item.digest} is a legacy schema 1 manifest; Regent does not change it`,
        })
      }
    }
    checkIndexUse(repository, state, out.items, out.problems)
  }
  applyProtections(ctx, repository, out)
  if (ctx.usage) await applyUsageToPlan(ctx.usage, ctx.governance, ctx.registry, repository, out)
  out.bytes = await estimateBytes(ctx, repository, state, out.items)
  out.summary = {
    repository,
    totalTags: state.snapshot.tags.size,
    itemsInRepo: new Set(out.items.flatMap((i) => i.vanishingTags)).size,
    owningTeams: owningTeams(ctx.governance, ctx.registry, repository),
  }
  return out
}

function resolveTargets(
  verb: Verb,
  repository: string,
  targets: Target[],
  state: RepositoryState,
  problems: PlanProblem[],
): Named[] {
  const { tags, dangling } = state.snapshot
  const out: Named[] = []
  const byTag = (tag: string): Named | undefined => {
    const head = tags.get(tag)
    if (head) return { tag, digest: head.digest, mediaType: head.mediaType, dangling: false }
    if (verb === 'untag' && dangling.includes(tag)) return { tag, digest: '', mediaType: '', dangling: true }
    return undefined
  }
  for (const target of targets) {
    if (target.tag !== undefined) {
      const found = byTag(target.tag)
      if (found) out.push(found)
      else
        problems.push({
          code: 'REGENT_TAG_NOT_FOUND',
          message: dangling.includes(target.tag)
            ? `${repository}:${target.tag} is listed but resolves to nothing (a dangling tag); untag removes it`
            : `${repository}:${target.tag} does not exist`,
        })
    } else if (target.tagPattern !== undefined) {
      const pattern = compileTagPattern(target.tagPattern)
      const listed = verb === 'untag' ? [...tags.keys(), ...dangling] : [...tags.keys()]
      for (const tag of listed.sort()) if (pattern.test(tag)) out.push(byTag(tag)!)
    } else if (target.digest !== undefined) {
      // An untagged manifest (an index child, say) has no tag to find it by; it is resolved when
      // its manifest is fetched.
      const tag = tagsOf(state, target.digest)[0]
      out.push({
        tag: tag ?? null,
        digest: target.digest,
        mediaType: tag ? tags.get(tag)!.mediaType : '',
        dangling: false,
      })
    }
  }
  return out
}

function untagItems(
  ctx: RepositoryPlanContext,
  repository: string,
  named: Named[],
  state: RepositoryState,
  warnings: string[],
): PlanItem[] {
  const method = ctx.caps.tagDelete
    ? 'tag-delete'
    : ctx.caps.deleteEnabled === false
      ? 'impossible'
      : 'placeholder'
  const items: PlanItem[] = []
  const seen = new Set<string>()
  for (const { tag, digest, mediaType, dangling } of named) {
    if (!tag || seen.has(tag)) continue
    seen.add(tag)
    if (dangling) {
      const placeholder = placeholderFor(repository, tag, 'dangling', MediaTypes.OciManifest)
      items.push({
        ...item(repository, tag, placeholder.digest, placeholder.mediaType, 'untag', [tag]),
        untagMethod: method,
        dangling: true,
        note: 'listed by the registry but resolves to nothing; removing it lets garbage collection verify again',
      })
      continue
    }
    if (tagsOf(state, digest).length === 1) {
      warnings.push(`${repository}:${tag} is the last tag of ${digest}: the manifest stays, untagged`)
    }
    items.push({ ...item(repository, tag, digest, mediaType, 'untag', [tag]), untagMethod: method })
  }
  return items
}

async function manifestItems(
  ctx: RepositoryPlanContext,
  repository: string,
  named: Named[],
  state: RepositoryState,
): Promise<PlanItem[]> {
  const items: PlanItem[] = []
  const seen = new Set<string>()
  for (const { tag, digest, mediaType } of named) {
    if (seen.has(digest)) continue
    seen.add(digest)
    // Also proves an untagged digest exists: an unknown one fails here with a 404.
    const type = mediaType || (await manifestOf(ctx, repository, digest)).mediaType
    items.push(item(repository, tag, digest, type, 'delete-manifest', tagsOf(state, digest)))
  }
  return items
}

function item(
  repository: string,
  tag: string | null,
  digest: string,
  mediaType: string,
  action: PlanItem['action'],
  vanishingTags: string[],
  note?: string,
): PlanItem {
  return {
    repository,
    tag,
    digest,
    mediaType,
    action,
    vanishingTags: [...vanishingTags].sort(),
    bytes: 0,
    protection: { level: 'none' },
    ...(note ? { note } : {}),
  }
}

/**
 * delete-image: the index children no other index uses and that have no tag of their own outside
 * the request (a tagged child is an image someone pulls by that tag), and every referrer
 * (signature, SBOM, attestation) of the manifests going away.
 */
async function addDependents(
  ctx: RepositoryPlanContext,
  repository: string,
  state: RepositoryState,
  out: RepositoryPlan,
  namedTags: ReadonlySet<string>,
): Promise<void> {
  const deleting = new Set(out.items.map((i) => i.digest))
  const keep = (digest: string, reason: string) => {
    out.kept.push({ repository, digest, tags: tagsOf(state, digest), reason })
    out.warnings.push(`${repository}@${digest} is kept: ${reason}`)
  }
  for (const parent of [...out.items]) {
    const manifest = await manifestOf(ctx, repository, parent.digest)
    if (manifest.kind !== 'index') continue
    for (const child of manifest.manifests) {
      if (deleting.has(child.digest)) continue
      const users = indexesUsing(state, child.digest, deleting)
      if (users.length > 0) {
        keep(child.digest, `another index still uses it (${describeIndexes(users)})`)
        continue
      }
      const ownTags = tagsOf(state, child.digest).filter((tag) => !namedTags.has(tag))
      if (ownTags.length > 0) {
        keep(
          child.digest,
          `it has tags of its own (${ownTags.join(', ')}), so it is an image in its own right`,
        )
        continue
      }
      deleting.add(child.digest)
      out.items.push(
        item(
          repository,
          null,
          child.digest,
          child.mediaType,
          'delete-child',
          tagsOf(state, child.digest),
          `child of ${parent.digest}`,
        ),
      )
    }
  }
  for (const parent of [...out.items]) {
    const found = await referrersOf(ctx, repository, state, parent.digest)
    if (found.index && !deleting.has(found.index.digest)) {
      deleting.add(found.index.digest)
      out.items.push(
        item(
          repository,
          null,
          found.index.digest,
          found.index.mediaType,
          'delete-referrer',
          tagsOf(state, found.index.digest),
          `the index listing the referrers of ${parent.digest}`,
        ),
      )
    }
    for (const referrer of found.referrers) {
      if (deleting.has(referrer.digest)) continue
      const ownTags = tagsOf(state, referrer.digest).filter((tag) => !namedTags.has(tag))
      if (ownTags.length > 0) {
        keep(referrer.digest, `it has tags of its own (${ownTags.join(', ')})`)
        continue
      }
      deleting.add(referrer.digest)
      out.items.push(
        item(
          repository,
          null,
          referrer.digest,
          referrer.mediaType,
          'delete-referrer',
          tagsOf(state, referrer.digest),
          `referrer (${referrer.artifactType ?? 'artifact'}) of ${parent.digest}`,
        ),
      )
    }
  }
}

async function warnAboutReferrers(
  ctx: RepositoryPlanContext,
  repository: string,
  state: RepositoryState,
  out: RepositoryPlan,
): Promise<void> {
  for (const parent of out.items) {
    const count = (await referrersOf(ctx, repository, state, parent.digest)).referrers.length
    if (count > 0) {
      out.warnings.push(
        `${repository}@${parent.digest} has ${count} referrer(s) (signatures, SBOMs) that would be orphaned; delete-image removes them too`,
      )
    }
  }
}

/**
 * Manifests whose subject is `digest`. Where the registry has no referrers API (distribution 2.8),
 * clients keep them in an index tagged `<alg>-<hex>` of the subject: the tag listing already says
 * whether that tag exists, so a subject without referrers costs no call at all. The API is asked
 * only where the probe found one (or could not tell).
 */
async function referrersOf(
  ctx: RepositoryPlanContext,
  repository: string,
  state: RepositoryState,
  digest: string,
): Promise<{ referrers: Descriptor[]; index?: { digest: string; mediaType: string } }> {
  if (ctx.caps.referrersApi !== false) {
    const found = await ctx.client.referrers(repository, digest).catch(() => undefined)
    if (found?.via === 'api') return { referrers: found.referrers }
  }
  const head = state.snapshot.tags.get(referrersTag(digest))
  if (!head) return { referrers: [] }
  const manifest = await manifestOf(ctx, repository, head.digest)
  if (manifest.kind !== 'index') return { referrers: [] }
  return { referrers: manifest.manifests, index: { digest: head.digest, mediaType: head.mediaType } }
}

/** Deleting a manifest an index still uses would break the index (distribution #3004). */
function checkIndexUse(
  repository: string,
  state: RepositoryState,
  items: PlanItem[],
  problems: PlanProblem[],
): void {
  const deleting = new Set(items.map((i) => i.digest))
  for (const digest of deleting) {
    for (const index of indexesUsing(state, digest, deleting)) {
      problems.push({
        code: 'REGENT_INDEX_CHILD_IN_USE',
        message: `${repository}@${digest} is a child of index ${index.digest} (${index.tags.join(', ')}), which stays; delete the index too or use delete-image`,
      })
    }
  }
}

/**
 * Protection of each item, judged on every tag that vanishes with it (an untagged manifest is
 * judged as such); the strongest level wins. Blocking verdicts become problems.
 */
function applyProtections(ctx: RepositoryPlanContext, repository: string, out: RepositoryPlan): void {
  for (const planned of out.items) {
    const tags = planned.vanishingTags.length > 0 ? planned.vanishingTags : [undefined]
    for (const tag of tags) {
      const verdict = protectionVerdict(
        ctx.governance,
        ctx.holds,
        { registry: ctx.registry, repository, ...(tag ? { tag } : {}), digest: planned.digest },
        ctx.now,
      )
      if (LEVEL_ORDER[verdict.level] > LEVEL_ORDER[planned.protection.level]) {
        planned.protection = {
          level: verdict.level,
          ...(verdict.rule ? { rule: verdict.rule } : {}),
          ...(tag ? { tag } : {}),
        }
      }
      if (planned.protection.level === 'held') break
    }
    const where = `${repository}${planned.tag ? `:${planned.tag}` : `@${planned.digest}`}`
    if (planned.protection.level === 'immutable') {
      out.problems.push({
        code: 'REGENT_PROTECTED',
        message: `${repository}:${planned.protection.tag ?? '(untagged)'} is immutable (${planned.protection.rule})${planned.tag !== planned.protection.tag ? ` and would vanish with ${where}` : ''}`,
      })
    }
    if (planned.protection.level === 'held') {
      out.problems.push({ code: 'REGENT_HELD', message: `${where} is under ${planned.protection.rule}` })
    }
    if (planned.untagMethod === 'impossible') {
      out.problems.push({
        code: 'REGENT_UNTAG_IMPOSSIBLE',
        message: `${where}: registry ${ctx.registry} neither deletes tags nor manifests, so it cannot untag`,
      })
    }
  }
}

/**
 * Bytes the next GC can reclaim: blobs of the manifests going away that no remaining tagged
 * manifest (or child of a remaining index) in the repository still uses. An estimate: manifests
 * that are only untagged, or referenced from other repositories, are not looked at.
 */
async function estimateBytes(
  ctx: RepositoryPlanContext,
  repository: string,
  state: RepositoryState,
  items: PlanItem[],
): Promise<number> {
  const deleting = new Set(items.filter((i) => i.action !== 'untag').map((i) => i.digest))
  if (deleting.size === 0) return 0
  const blobsOf = async (digest: string): Promise<Map<string, number>> => {
    const manifest = await manifestOf(ctx, repository, digest)
    const blobs = new Map<string, number>()
    if (manifest.kind === 'image')
      for (const d of [manifest.config, ...manifest.layers]) blobs.set(d.digest, d.size)
    if (manifest.kind === 'index') {
      for (const child of manifest.manifests) {
        if (!isDigest(child.digest)) continue
        for (const [d, size] of await blobsOf(child.digest)) blobs.set(d, size)
      }
    }
    return blobs
  }
  const kept = new Set<string>()
  for (const digest of state.snapshot.tagsByDigest.keys()) {
    if (deleting.has(digest)) continue
    for (const blob of (await blobsOf(digest)).keys()) kept.add(blob)
  }
  let total = 0
  const counted = new Set<string>()
  for (const planned of items) {
    if (planned.action === 'untag') continue
    const manifest = await manifestOf(ctx, repository, planned.digest)
    const own =
      manifest.kind === 'image'
        ? new Map([manifest.config, ...manifest.layers].map((d) => [d.digest, d.size] as const))
        : new Map<string, number>()
    planned.bytes = 0
    for (const [blob, size] of own) {
      if (kept.has(blob) || counted.has(blob)) continue
      counted.add(blob)
      planned.bytes += size
    }
    total += planned.bytes
  }
  return total
}

async function manifestOf(ctx: RepositoryPlanContext, repository: string, digest: string): Promise<Manifest> {
  return (await ctx.browse.manifestOf(ctx.registry, repository, digest)).manifest
}

function describeIndexes(indexes: { digest: string; tags: string[] }[]): string {
  return indexes.map((i) => `${i.digest}${i.tags.length > 0 ? ` (${i.tags.join(', ')})` : ''}`).join('; ')
}
