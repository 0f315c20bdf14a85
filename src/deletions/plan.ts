import { createHash } from 'node:crypto'
import { canonicalJson } from '../audit/index.js'
import type { Principal } from '../auth/principal.js'
import {
  type ApprovalRequirement,
  compileTagPattern,
  type GovernanceConfig,
  type LegalHold,
  owningTeams,
  type PlanSummary,
  type ProtectionLevel,
  protectionVerdict,
  requiredApprovals,
} from '../governance/index.js'
import { assertRepository, isDigest, type Manifest, manifestKindOf, parseReference } from '../oci/index.js'
import { type BrowseService, groupTagsByDigest } from '../registries/browse-service.js'
import type { TagHead } from '../registries/content-cache.js'
import type { RegistrySet } from '../registries/registry-set.js'

/**
 * The plan resolver. A plan pins every item to (repository, tag, digest) from a fresh HEAD with
 * the full Accept list, and says everything the deletion will do that its requester might not
 * expect: the sibling tags that vanish with a digest, the index that still needs a child, the
 * signatures left orphaned, what is protected or held, and how it will untag. A dry run is this
 * same function; nothing here writes anything.
 */

export type Verb = 'untag' | 'delete-manifest' | 'delete-image'
export type ItemAction = 'untag' | 'delete-manifest' | 'delete-child' | 'delete-referrer'
export type UntagMethod = 'tag-delete' | 'placeholder' | 'impossible'

export interface Target {
  repository: string
  tag?: string
  digest?: string
  tagPattern?: string
}

export interface PlanItem {
  repository: string
  /** The tag this item is about: the tag to untag, or the tag the request named. */
  tag: string | null
  digest: string
  mediaType: string
  action: ItemAction
  /** Every tag that no longer resolves once this item is done. */
  vanishingTags: string[]
  untagMethod?: UntagMethod
  /** Bytes of blobs only this item's manifests use in the repository (freed by the next GC). */
  bytes: number
  protection: { level: ProtectionLevel; rule?: string; tag?: string }
  /** Why an item the request did not name is in the plan. */
  note?: string
}

export interface PlanProblem {
  code:
    | 'REGENT_PROTECTED'
    | 'REGENT_HELD'
    | 'REGENT_INDEX_CHILD_IN_USE'
    | 'REGENT_UNTAG_IMPOSSIBLE'
    | 'REGENT_REGISTRY_DELETE_DISABLED'
    | 'REGENT_LEGACY_TARGET'
    | 'REGENT_TAG_NOT_FOUND'
    | 'REGENT_NOTHING_TO_DELETE'
  message: string
}

export interface Plan {
  registry: string
  verb: Verb
  items: PlanItem[]
  /** Any problem makes the request impossible as asked; a dry run still shows the plan. */
  problems: PlanProblem[]
  warnings: string[]
  bytesFreed: number
  repositories: { repository: string; totalTags: number; itemsInRepo: number; owningTeams: string[] }[]
  approvals: ApprovalRequirement
  hash: string
}

export interface PlanContext {
  registries: RegistrySet
  browse: BrowseService
  governance: GovernanceConfig
  holds: LegalHold[]
  now: Date
}

interface RepositoryState {
  tags: Map<string, TagHead>
  tagsByDigest: Map<string, string[]>
  manifests: Map<string, Manifest>
}

const LEVEL_ORDER: Record<ProtectionLevel, number> = { none: 0, 'admin-only': 1, immutable: 2, held: 3 }

export async function resolvePlan(
  ctx: PlanContext,
  registry: string,
  verb: Verb,
  targets: Target[],
): Promise<Plan> {
  const { client } = ctx.registries.get(registry)
  const caps = await client.probe()
  const items: PlanItem[] = []
  const problems: PlanProblem[] = []
  const warnings: string[] = []
  const repositories: Plan['repositories'] = []
  let bytesFreed = 0

  const byRepository = new Map<string, Target[]>()
  for (const target of targets)
    byRepository.set(target.repository, [...(byRepository.get(target.repository) ?? []), target])

  for (const [repository, repoTargets] of byRepository) {
    const state = await loadRepository(ctx, registry, repository)
    const named = resolveTargets(repository, repoTargets, state, verb, problems)
    const repoItems: PlanItem[] = []

    if (verb === 'untag') {
      for (const { tag, head } of named) {
        if (!tag) continue
        const siblings = (state.tagsByDigest.get(head.digest) ?? []).filter((t) => t !== tag)
        if (siblings.length === 0) {
          warnings.push(
            `${repository}:${tag} is the last tag of ${head.digest}: the manifest stays, untagged`,
          )
        }
        repoItems.push({
          repository,
          tag,
          digest: head.digest,
          mediaType: head.mediaType,
          action: 'untag',
          vanishingTags: [tag],
          untagMethod: caps.tagDelete
            ? 'tag-delete'
            : caps.deleteEnabled === false
              ? 'impossible'
              : 'placeholder',
          bytes: 0,
          protection: { level: 'none' },
        })
      }
    } else {
      const digests = new Map<string, { tag: string | null; mediaType: string }>()
      for (const { tag, head } of named)
        if (!digests.has(head.digest)) digests.set(head.digest, { tag, mediaType: head.mediaType })
      for (const [digest, { tag, mediaType }] of digests) {
        repoItems.push(manifestItem(repository, digest, mediaType, tag, 'delete-manifest', state))
      }
      for (const item of repoItems) {
        // Also proves an untagged digest exists: an unknown one fails here with a 404.
        item.mediaType ||= (await manifestFor(ctx, registry, repository, state, item.digest)).mediaType
      }
      if (verb === 'delete-image') {
        await addDependents(ctx, registry, repository, state, repoItems, warnings)
      } else {
        await warnAboutReferrers(ctx, registry, repository, repoItems, warnings)
      }
      await loadIndexes(ctx, registry, repository, state)
    }

    for (const item of repoItems) {
      const manifest = state.manifests.get(item.digest)
      if (manifest?.kind === 'legacy') {
        problems.push({
          code: 'REGENT_LEGACY_TARGET',
          message: `${repository}@${item.digest} is a legacy schema 1 manifest; Regent does not change it`,
        })
      }
    }
    checkIndexUse(repository, state, repoItems, problems)
    item: for (const item of repoItems) {
      const tags = item.vanishingTags.length > 0 ? item.vanishingTags : [undefined]
      for (const tag of tags) {
        const verdict = protectionVerdict(
          ctx.governance,
          ctx.holds,
          { registry, repository, ...(tag ? { tag } : {}), digest: item.digest },
          ctx.now,
        )
        if (LEVEL_ORDER[verdict.level] > LEVEL_ORDER[item.protection.level]) {
          item.protection = {
            level: verdict.level,
            ...(verdict.rule ? { rule: verdict.rule } : {}),
            ...(tag ? { tag } : {}),
          }
        }
        if (item.protection.level === 'held') continue item
      }
    }
    bytesFreed += await estimateBytes(ctx, registry, repository, state, repoItems)
    const removedTags = new Set(repoItems.flatMap((i) => i.vanishingTags))
    repositories.push({
      repository,
      totalTags: state.tags.size,
      itemsInRepo: removedTags.size,
      owningTeams: owningTeams(ctx.governance, registry, repository),
    })
    items.push(...repoItems)
  }

  for (const item of items) {
    const where = `${item.repository}${item.tag ? `:${item.tag}` : `@${item.digest}`}`
    if (item.protection.level === 'immutable') {
      problems.push({
        code: 'REGENT_PROTECTED',
        message: `${item.repository}:${item.protection.tag ?? '(untagged)'} is immutable (${item.protection.rule})${item.tag !== item.protection.tag ? ` and would vanish with ${where}` : ''}`,
      })
    }
    if (item.protection.level === 'held') {
      problems.push({ code: 'REGENT_HELD', message: `${where} is under ${item.protection.rule}` })
    }
    if (item.untagMethod === 'impossible') {
      problems.push({
        code: 'REGENT_UNTAG_IMPOSSIBLE',
        message: `${where}: registry ${registry} neither deletes tags nor manifests, so it cannot untag`,
      })
    }
  }
  if (verb !== 'untag' && caps.deleteEnabled === false && items.length > 0) {
    problems.push({
      code: 'REGENT_REGISTRY_DELETE_DISABLED',
      message: `registry ${registry} has deletes disabled`,
    })
  }
  if (items.length === 0 && problems.length === 0) {
    problems.push({ code: 'REGENT_NOTHING_TO_DELETE', message: targets.map(describeTarget).join(', ') })
  }

  const summary: PlanSummary = {
    items: items.length,
    repositories: repositories.map((r) => ({ registry, ...r })),
    adminOnlyItems: items.filter((i) => i.protection.level === 'admin-only').length,
    teams: [...new Set(repositories.flatMap((r) => r.owningTeams))].sort(),
  }
  const plan: Omit<Plan, 'hash'> = {
    registry,
    verb,
    items,
    problems,
    warnings,
    bytesFreed,
    repositories,
    approvals: requiredApprovals(ctx.governance, summary),
  }
  return { ...plan, hash: planHash(plan) }
}

/** The hash approvals are bound to: what will be deleted, not the wording around it. */
export function planHash(plan: Pick<Plan, 'registry' | 'verb' | 'items'>): string {
  const essence = {
    registry: plan.registry,
    verb: plan.verb,
    items: plan.items.map((i) => ({
      repository: i.repository,
      tag: i.tag,
      digest: i.digest,
      action: i.action,
      vanishingTags: i.vanishingTags,
    })),
  }
  return createHash('sha256').update(canonicalJson(essence)).digest('hex')
}

/** Every principal-independent check passes; only ownership and approvals remain. */
export function blockingProblem(plan: Plan): PlanProblem | undefined {
  return plan.problems[0]
}

export function describeTarget(t: Target): string {
  return `${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}${t.tagPattern ? ` tags ${t.tagPattern}` : ''}`
}

async function loadRepository(
  ctx: PlanContext,
  registry: string,
  repository: string,
): Promise<RepositoryState> {
  const tags = await ctx.browse.snapshotTags(registry, repository)
  return { tags, tagsByDigest: groupTagsByDigest(tags), manifests: new Map() }
}

async function manifestFor(
  ctx: PlanContext,
  registry: string,
  repository: string,
  state: RepositoryState,
  digest: string,
) {
  let manifest = state.manifests.get(digest)
  if (!manifest) {
    manifest = (await ctx.browse.manifestOf(registry, repository, digest)).manifest
    state.manifests.set(digest, manifest)
  }
  return manifest
}

function resolveTargets(
  repository: string,
  targets: Target[],
  state: RepositoryState,
  verb: Verb,
  problems: PlanProblem[],
): { tag: string | null; head: TagHead }[] {
  const out: { tag: string | null; head: TagHead }[] = []
  for (const target of targets) {
    if (target.tag !== undefined) {
      const head = state.tags.get(target.tag)
      if (!head)
        problems.push({ code: 'REGENT_TAG_NOT_FOUND', message: `${repository}:${target.tag} does not exist` })
      else out.push({ tag: target.tag, head })
    } else if (target.tagPattern !== undefined) {
      const pattern = compileTagPattern(target.tagPattern)
      for (const [tag, head] of state.tags) if (pattern.test(tag)) out.push({ tag, head })
    } else if (target.digest !== undefined) {
      const head = [...state.tags.values()].find((h) => h.digest === target.digest)
      const tags = state.tagsByDigest.get(target.digest) ?? []
      // An untagged manifest (an index child, say) has no tag to find it by; it is resolved when
      // its manifest is fetched.
      out.push({
        tag: verb === 'untag' ? null : (tags[0] ?? null),
        head: head ?? { digest: target.digest, mediaType: '', size: -1 },
      })
    }
  }
  return out
}

function manifestItem(
  repository: string,
  digest: string,
  mediaType: string,
  tag: string | null,
  action: ItemAction,
  state: RepositoryState,
  note?: string,
): PlanItem {
  return {
    repository,
    tag,
    digest,
    mediaType,
    action,
    vanishingTags: [...(state.tagsByDigest.get(digest) ?? [])].sort(),
    bytes: 0,
    protection: { level: 'none' },
    ...(note ? { note } : {}),
  }
}

/**
 * delete-image: the index children no other index of the repository uses, and every referrer
 * (signature, SBOM, attestation) of the manifests going away.
 */
async function addDependents(
  ctx: PlanContext,
  registry: string,
  repository: string,
  state: RepositoryState,
  items: PlanItem[],
  warnings: string[],
): Promise<void> {
  const deleting = new Set(items.map((i) => i.digest))
  const usedElsewhere = await childrenOfRemainingIndexes(ctx, registry, repository, state, deleting)
  for (const item of [...items]) {
    const manifest = await manifestFor(ctx, registry, repository, state, item.digest)
    if (!item.mediaType) item.mediaType = manifest.mediaType
    if (manifest.kind !== 'index') continue
    for (const child of manifest.manifests) {
      if (deleting.has(child.digest)) continue
      if (usedElsewhere.has(child.digest)) {
        warnings.push(`${repository}@${child.digest} is kept: another index still uses it`)
        continue
      }
      deleting.add(child.digest)
      items.push(
        manifestItem(
          repository,
          child.digest,
          child.mediaType,
          null,
          'delete-child',
          state,
          `child of ${item.digest}`,
        ),
      )
    }
  }
  for (const item of [...items]) {
    const { client } = ctx.registries.get(registry)
    const found = await client.referrers(repository, item.digest).catch(() => undefined)
    for (const referrer of found?.referrers ?? []) {
      if (deleting.has(referrer.digest)) continue
      deleting.add(referrer.digest)
      items.push(
        manifestItem(
          repository,
          referrer.digest,
          referrer.mediaType,
          null,
          'delete-referrer',
          state,
          `referrer (${referrer.artifactType ?? 'artifact'}) of ${item.digest}`,
        ),
      )
    }
  }
}

async function warnAboutReferrers(
  ctx: PlanContext,
  registry: string,
  repository: string,
  items: PlanItem[],
  warnings: string[],
) {
  const { client } = ctx.registries.get(registry)
  for (const item of items) {
    const found = await client.referrers(repository, item.digest).catch(() => undefined)
    const count = found?.referrers.length ?? 0
    if (count > 0) {
      warnings.push(
        `${repository}@${item.digest} has ${count} referrer(s) (signatures, SBOMs) that would be orphaned; delete-image removes them too`,
      )
    }
  }
}

/** Fetches every tagged index of the repository, so index membership can be checked. */
async function loadIndexes(ctx: PlanContext, registry: string, repository: string, state: RepositoryState) {
  for (const [digest, tags] of state.tagsByDigest) {
    const head = state.tags.get(tags[0]!)
    if (head && manifestKindOf(head.mediaType) === 'index')
      await manifestFor(ctx, registry, repository, state, digest)
  }
}

/** Digests used by an index of the repository that is not itself going away. */
async function childrenOfRemainingIndexes(
  ctx: PlanContext,
  registry: string,
  repository: string,
  state: RepositoryState,
  deleting: Set<string>,
): Promise<Map<string, string>> {
  const used = new Map<string, string>()
  for (const [digest, tags] of state.tagsByDigest) {
    if (deleting.has(digest)) continue
    const head = state.tags.get(tags[0]!)
    if (!head || manifestKindOf(head.mediaType) !== 'index') continue
    const manifest = await manifestFor(ctx, registry, repository, state, digest)
    if (manifest.kind !== 'index') continue
    for (const child of manifest.manifests) used.set(child.digest, digest)
  }
  return used
}

/** Deleting a manifest an index still uses would break the index (distribution #3004). */
function checkIndexUse(
  repository: string,
  state: RepositoryState,
  items: PlanItem[],
  problems: PlanProblem[],
): void {
  const deleting = new Set(items.filter((i) => i.action !== 'untag').map((i) => i.digest))
  if (deleting.size === 0) return
  for (const [indexDigest, tags] of state.tagsByDigest) {
    if (deleting.has(indexDigest)) continue
    const manifest = state.manifests.get(indexDigest)
    if (manifest?.kind !== 'index') continue
    for (const child of manifest.manifests) {
      if (deleting.has(child.digest)) {
        problems.push({
          code: 'REGENT_INDEX_CHILD_IN_USE',
          message: `${repository}@${child.digest} is a child of index ${indexDigest} (${tags.join(', ')}), which stays; delete the index too or use delete-image`,
        })
      }
    }
  }
}

/**
 * Bytes the next GC can reclaim: blobs of the manifests going away that no remaining tagged
 * manifest (or child of a remaining index) in the repository still uses. An estimate: manifests
 * that are only untagged, or referenced from other repositories, are not looked at.
 */
async function estimateBytes(
  ctx: PlanContext,
  registry: string,
  repository: string,
  state: RepositoryState,
  items: PlanItem[],
): Promise<number> {
  const deleting = new Set(items.filter((i) => i.action !== 'untag').map((i) => i.digest))
  if (deleting.size === 0) return 0
  const blobsOf = async (digest: string): Promise<Map<string, number>> => {
    const manifest = await manifestFor(ctx, registry, repository, state, digest)
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
  for (const digest of state.tagsByDigest.keys()) {
    if (deleting.has(digest)) continue
    for (const blob of (await blobsOf(digest)).keys()) kept.add(blob)
  }
  let total = 0
  const counted = new Set<string>()
  for (const item of items) {
    if (item.action === 'untag') continue
    const manifest = await manifestFor(ctx, registry, repository, state, item.digest)
    const own =
      manifest.kind === 'image'
        ? new Map([manifest.config, ...manifest.layers].map((d) => [d.digest, d.size] as const))
        : new Map<string, number>()
    item.bytes = 0
    for (const [blob, size] of own) {
      if (kept.has(blob) || counted.has(blob)) continue
      counted.add(blob)
      item.bytes += size
    }
    total += item.bytes
  }
  return total
}

/** Validates a target's shape before any registry call: exactly one of tag, digest, tagPattern. */
export function targetProblem(target: Target, verb: Verb): string | undefined {
  const given = [target.tag, target.digest, target.tagPattern].filter((v) => v !== undefined).length
  if (given !== 1) return `${target.repository}: give exactly one of tag, digest, tagPattern`
  if (verb === 'untag' && target.digest !== undefined)
    return `${target.repository}: untag needs a tag (a digest has no tag to remove)`
  assertRepository(target.repository)
  if (target.tag !== undefined) parseReference(target.tag)
  if (target.digest !== undefined) parseReference(target.digest)
  if (target.tagPattern !== undefined) compileTagPattern(target.tagPattern)
  return undefined
}

export type { Principal }
