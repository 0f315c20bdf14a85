import { type GovernanceConfig, inUsePolicy } from '../governance/index.js'
import type { UsageLocation, UsageLookup, UsageVerdict } from '../usage/index.js'
import type { ItemResult } from './items-sql.js'
import type { PlanItem, PlanProblem } from './plan.js'
import { planChanged } from './verify.js'

/**
 * Never delete an image that something still runs or will run. Plans and the check before each
 * wave ask the usage feature, once per repository, about every item: a digest is in use while a
 * workload runs it or names it by digest, or names one of the tags that would vanish with it; an
 * untag only cares about workloads naming that tag. What in use means is governance's
 * (`governance.inUse`): refuse, admin-only or warn. A source past its staleness limit makes usage
 * unknown, which counts as in use unless configured otherwise (fail closed).
 */
export type UsageGuard = UsageLookup

/** What a plan item says about its usage (only when it counts as in use). */
export interface ItemUsage {
  status: 'in-use' | 'unknown'
  /** One line: "running in prod/payments deploy/api, 3 pods". */
  reason: string
  /** What governance makes of it for this repository. */
  policy: 'refuse' | 'admin-only' | 'warn'
  /** The places, strongest first (at most ten). */
  where: UsageLocation[]
}

interface Checked {
  digest: string
  action: PlanItem['action']
  tag: string | null
}

/** The verdicts of one repository's items, each narrowed to what deleting that item would break. */
export async function usageOfItems(
  usage: UsageGuard,
  registry: string,
  repository: string,
  items: (Checked & { vanishing: string[] })[],
): Promise<Map<Checked, UsageVerdict>> {
  const verdicts = await usage.usageOf(
    registry,
    repository,
    items.map((item) => ({
      digest: item.digest,
      tags: item.action === 'untag' ? [item.tag!] : item.vanishing,
    })),
  )
  const out = new Map<Checked, UsageVerdict>()
  for (const item of items) {
    const verdict = verdicts.get(item.digest)
    if (verdict) out.set(item, item.action === 'untag' ? narrowToTag(verdict, item.tag!) : verdict)
  }
  return out
}

/** An untag leaves the image: only workloads naming the tag itself are affected. */
function narrowToTag(verdict: UsageVerdict, tag: string): UsageVerdict {
  const where = verdict.where.filter((l) => l.by === 'tag' && l.reference === tag)
  return {
    ...verdict,
    where,
    status: verdict.status === 'unknown' ? 'unknown' : where.length > 0 ? 'in-use' : 'unused',
  }
}

/**
 * Plans: each item in use gets `inUse`; governance's answer becomes a problem (refuse), an
 * admin-only protection (the approval then needs an admin), or a warning.
 */
export async function applyUsageToPlan(
  usage: UsageGuard,
  governance: GovernanceConfig,
  registry: string,
  repository: string,
  out: { items: PlanItem[]; problems: PlanProblem[]; warnings: string[] },
): Promise<void> {
  if (out.items.length === 0) return
  const items = out.items.map((item) => ({ ...item, vanishing: item.vanishingTags, planned: item }))
  const verdicts = await usageOfItems(usage, registry, repository, items)
  const policy = inUsePolicy(governance, registry, repository)
  for (const checked of items) {
    const verdict = verdicts.get(checked)
    if (!verdict || !usage.countsAsInUse(verdict)) continue
    const item = checked.planned
    const reason = usage.describe(verdict)
    item.inUse = {
      status: verdict.status === 'unknown' ? 'unknown' : 'in-use',
      reason,
      policy: policy.level,
      where: verdict.where.slice(0, 10),
    }
    const what = `${repository}${item.tag ? `:${item.tag}` : `@${item.digest}`}`
    if (policy.level === 'refuse') {
      out.problems.push({
        code: verdict.status === 'unknown' ? 'REGENT_USAGE_UNKNOWN' : 'REGENT_IN_USE',
        message: `${what}: ${reason} (${policy.rule})`,
      })
    } else if (policy.level === 'admin-only') {
      if (item.protection.level === 'none')
        item.protection = { level: 'admin-only', rule: `${reason} (${policy.rule})` }
    } else {
      out.warnings.push(`${what}: ${reason}; ${policy.rule}, so the deletion goes ahead`)
    }
  }
}

/**
 * Execution: usage that appeared since approval stops the item (an approval with an admin covers
 * admin-only usage; warn never stops anything). Returns the items to stop, by position.
 */
export async function usageChanges(
  usage: UsageGuard,
  governance: GovernanceConfig,
  registry: string,
  repository: string,
  items: {
    position: number
    digest: string
    action: PlanItem['action']
    tag: string | null
    vanishing: string[]
    approvedAsAdminOnly: boolean
  }[],
): Promise<Map<number, ItemResult>> {
  const stopped = new Map<number, ItemResult>()
  if (items.length === 0) return stopped
  const policy = inUsePolicy(governance, registry, repository)
  if (policy.level === 'warn') return stopped
  const verdicts = await usageOfItems(usage, registry, repository, items)
  for (const item of items) {
    const verdict = verdicts.get(item)
    if (!verdict || !usage.countsAsInUse(verdict)) continue
    if (policy.level === 'admin-only' && item.approvedAsAdminOnly) continue
    const what = `${repository}${item.tag ? `:${item.tag}` : `@${item.digest}`}`
    stopped.set(
      item.position,
      planChanged(`${what} is now in use: ${usage.describe(verdict)} (${policy.rule})`),
    )
  }
  return stopped
}
