import { createHash } from 'node:crypto'
import { canonicalJson } from '../audit/index.js'
import {
  type ApprovalRequirement,
  compileTagPattern,
  type GovernanceConfig,
  type LegalHold,
  type PlanSummary,
  type ProtectionLevel,
  requiredApprovals,
} from '../governance/index.js'
import { groupBy } from '../lib/group-by.js'
import { assertRepository, manifestKindOf, parseReference } from '../oci/index.js'
import type { BrowseService } from '../registries/browse-service.js'
import { mapLimit } from '../registries/map-limit.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { planRepository } from './plan-repository.js'
import type { ItemUsage, UsageGuard } from './usage-check.js'

/**
 * The plan resolver. A plan pins every item to (repository, tag, digest) from a fresh look at the
 * registry, and says everything the deletion will do that its requester might not expect: the
 * sibling tags that vanish with a digest, the index that still needs a child, the tagged children
 * kept as images of their own, the signatures left orphaned, what is protected or held, and how it
 * will untag. A dry run is this same function; nothing here writes anything.
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
  /**
   * The registry lists the tag but it resolves to nothing (a delete that failed half-way inside
   * the registry). `digest` is then the placeholder Regent pushes onto the tag to remove it.
   */
  dangling?: boolean
  /** Something runs or names it (or its usage is unknown), and what governance makes of that. */
  inUse?: ItemUsage
}

/** A manifest the request reaches that stays, and why (an index child with a tag of its own). */
export interface KeptManifest {
  repository: string
  digest: string
  tags: string[]
  reason: string
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
    | 'REGENT_IN_USE'
    | 'REGENT_USAGE_UNKNOWN'
  message: string
}

export interface Plan {
  registry: string
  verb: Verb
  items: PlanItem[]
  /** Any problem makes the request impossible as asked; a dry run still shows the plan. */
  problems: PlanProblem[]
  warnings: string[]
  /** What the request reaches but leaves alone, with the reason. Absent in plans made before it existed. */
  kept?: KeptManifest[]
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
  /**
   * Ask the registry about every tag now (a plan that is stored and approved). false lets a dry run
   * reuse answers a few seconds old, as browsing does.
   */
  fresh: boolean
  /** In-use awareness; without it (no usage feature) nothing is judged in use. */
  usage?: UsageGuard
}

/** Repositories planned at once; the registry's own connection limit bounds the calls. */
const REPOSITORY_FANOUT = 8

export async function resolvePlan(
  ctx: PlanContext,
  registry: string,
  verb: Verb,
  targets: Target[],
): Promise<Plan> {
  const { client } = ctx.registries.get(registry)
  const caps = await client.probe()
  const byRepository = groupBy(targets, (target) => target.repository)

  // Repositories in name order and items in the order each repository's planning finds them: the
  // same registry state always gives the same plan (the hash sorts items anyway).
  const repositoryTargets = [...byRepository].sort(([a], [b]) => compare(a, b))
  const planned = await mapLimit(repositoryTargets, REPOSITORY_FANOUT, ([repository, repoTargets]) =>
    planRepository({ ...ctx, registry, verb, caps, client }, repository, repoTargets),
  )
  const items = planned.flatMap((p) => p.items)
  const problems = planned.flatMap((p) => p.problems)
  const repositories = planned.map((p) => p.summary)

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
    warnings: planned.flatMap((p) => p.warnings),
    kept: planned.flatMap((p) => p.kept),
    bytesFreed: planned.reduce((sum, p) => sum + p.bytes, 0),
    repositories,
    approvals: requiredApprovals(ctx.governance, summary),
  }
  return { ...plan, hash: planHash(plan) }
}

/**
 * The hash approvals are bound to: what will be deleted, not the wording around it. Items are
 * hashed in a fixed order, so the same registry state always gives the same hash.
 */
export function planHash(plan: Pick<Plan, 'registry' | 'verb' | 'items'>): string {
  const essence = {
    registry: plan.registry,
    verb: plan.verb,
    items: [...plan.items].sort(compareItems).map((i) => ({
      repository: i.repository,
      tag: i.tag,
      digest: i.digest,
      action: i.action,
      vanishingTags: [...i.vanishingTags].sort(),
    })),
  }
  return createHash('sha256').update(canonicalJson(essence)).digest('hex')
}

/**
 * The order items are executed in within a repository: what lists other manifests goes before
 * what it lists, so nothing is ever left pointing at a deleted manifest: named manifests, then
 * index children, then referrers; within each, indexes first.
 */
export function executionRank(item: Pick<PlanItem, 'action' | 'mediaType'>): number {
  const base = { 'delete-manifest': 0, untag: 0, 'delete-child': 1, 'delete-referrer': 2 }[item.action]
  return base * 2 + (manifestKindOf(item.mediaType) === 'index' ? 0 : 1)
}

function compareItems(a: PlanItem, b: PlanItem): number {
  return (
    compare(a.repository, b.repository) ||
    executionRank(a) - executionRank(b) ||
    compare(a.tag ?? '', b.tag ?? '') ||
    compare(a.digest, b.digest)
  )
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function describeTarget(t: Target): string {
  return `${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}${t.tagPattern ? ` tags ${t.tagPattern}` : ''}`
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
