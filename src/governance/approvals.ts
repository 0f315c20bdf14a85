import { hasRole, isAdmin, type Principal, personOf } from '../auth/principal.js'
import type { ApprovalRuleConfig, ApproverGroup, GovernanceConfig } from './config-schema.js'

export interface PlanRepositorySummary {
  registry: string
  repository: string
  /** Tags the repository has now. */
  totalTags: number
  /** Plan items in this repository. */
  itemsInRepo: number
  owningTeams: string[]
}

/** What the approval rules look at: the plan's size and spread, not its individual items. */
export interface PlanSummary {
  items: number
  repositories: PlanRepositorySummary[]
  /** Items whose protection verdict is `admin-only`. */
  adminOnlyItems: number
  /** The distinct teams owning the plan's repositories. */
  teams: string[]
}

/**
 * `count` distinct approvers are needed, at least `adminCount` of them admins. `from` names who
 * may approve: an admin always may; an approver of an owning team only when `from` includes
 * `owning-team-approvers` and the admins needed leave room for them.
 */
export interface ApprovalRequirement {
  count: number
  from: ApproverGroup[]
  adminCount: number
  /** Why, one line per rule that applied, for the request's page and the audit log. */
  reasons: string[]
}

/**
 * The approvals a plan needs. Base: the default requirement, or, when one team owns every
 * repository of the plan and has `ownRepositories` set, that (the strictest, should several teams
 * own them all; `none` is 0). Then every configured rule whose conditions all hold can only raise
 * it: the count to the rule's count, and a rule `from: admins` needs that many admins. An
 * admin-only item always needs an admin, whatever the config says.
 */
export function requiredApprovals(config: GovernanceConfig, plan: PlanSummary): ApprovalRequirement {
  const reasons: string[] = []
  const from = new Set<ApproverGroup>()
  let count = 0
  let adminCount = 0
  const need = (n: number, group: ApproverGroup, reason: string) => {
    count = Math.max(count, n)
    if (group === 'admins') adminCount = Math.max(adminCount, n)
    from.add(group)
    reasons.push(reason)
  }

  const owners = teamsOwningEveryRepository(plan)
  const settings = owners.map(
    (name) => config.teams.find((team) => team.name === name)?.approvals?.ownRepositories,
  )
  if (owners.length > 0 && settings.every((s) => s !== undefined)) {
    const n = Math.max(...settings.map((s) => (s === 'none' ? 0 : s)))
    need(
      n,
      'owning-team-approvers',
      `${owners.join(', ')} own every repository in the plan: ${n === 0 ? 'no approval needed' : `${plural(n, 'approval')} from owning-team-approvers`} by team setting`,
    )
  } else {
    const { count: n, from: group } = config.approvals.default
    need(n, group, `default: ${plural(n, 'approval')} from ${group}`)
  }

  config.approvals.rules.forEach((rule, index) => {
    const facts = ruleFacts(rule, plan)
    if (facts)
      need(
        rule.count,
        rule.from,
        `rules[${index}] (${facts}): ${plural(rule.count, 'approval')} from ${rule.from}`,
      )
  })

  if (plan.adminOnlyItems > 0) {
    need(1, 'admins', `${plural(plan.adminOnlyItems, 'admin-only item')}: an admin must approve`)
  }

  const order: ApproverGroup[] = ['owning-team-approvers', 'admins']
  return { count, from: order.filter((group) => from.has(group)), adminCount, reasons }
}

/** The facts that make every condition of the rule hold, or undefined when one does not. */
function ruleFacts(rule: ApprovalRuleConfig, plan: PlanSummary): string | undefined {
  const { when } = rule
  const facts: string[] = []
  if (when.minItems !== undefined) {
    if (plan.items < when.minItems) return undefined
    facts.push(`${plural(plan.items, 'item')}, at least ${when.minItems}`)
  }
  if (when.minShareOfRepository !== undefined) {
    const minShare = when.minShareOfRepository
    const repo = plan.repositories.find((r) => shareOfRepository(r) >= minShare)
    if (!repo) return undefined
    facts.push(
      `${repo.itemsInRepo} of ${repo.totalTags} tags of ${repo.repository}, at least ${Math.round(minShare * 100)}%`,
    )
  }
  if (when.hasAdminOnlyItems !== undefined) {
    if (plan.adminOnlyItems > 0 !== when.hasAdminOnlyItems) return undefined
    facts.push(when.hasAdminOnlyItems ? 'admin-only items' : 'no admin-only items')
  }
  if (when.multipleTeams !== undefined) {
    if (spansTeams(plan) !== when.multipleTeams) return undefined
    facts.push(when.multipleTeams ? `repositories of ${plan.teams.join(', ')}` : 'one team')
  }
  return facts.length > 0 ? facts.join('; ') : undefined
}

function shareOfRepository(repo: PlanRepositorySummary): number {
  if (repo.totalTags <= 0) return repo.itemsInRepo > 0 ? 1 : 0
  return Math.min(1, repo.itemsInRepo / repo.totalTags)
}

function teamsOwningEveryRepository(plan: PlanSummary): string[] {
  const [first, ...rest] = plan.repositories
  if (!first) return []
  return first.owningTeams.filter((team) => rest.every((repo) => repo.owningTeams.includes(team)))
}

/**
 * The plan reaches into more than one team's repositories: no single team owns all of them, and
 * together they have at least two owners. (A repository two teams share is not, by itself, spread.)
 */
function spansTeams(plan: PlanSummary): boolean {
  if (teamsOwningEveryRepository(plan).length > 0) return false
  return new Set(plan.repositories.flatMap((repo) => repo.owningTeams)).size >= 2
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

export type ApproverRole = 'admin' | 'owning-team-approver'

export type ApprovalEligibility =
  | { ok: true; as: ApproverRole }
  | { ok: false; code: 'REGENT_SELF_APPROVAL' | 'REGENT_APPROVER_NOT_ELIGIBLE'; message: string }

/**
 * Whether the principal may approve a request made by `requesterPerson` (the `personOf` the
 * requester). Nobody approves their own request, also not through a bot acting for them. An admin
 * may approve anything else; an approver of one of the plan's owning teams may when the
 * requirement leaves room for owning-team approvers.
 */
export function mayApprove(
  principal: Principal,
  requesterPerson: string,
  requirement: ApprovalRequirement,
  owningTeams: readonly string[],
  /** The credential that filed the request (a bot's own subject when it relayed for a person). */
  requesterSubject: string = requesterPerson,
): ApprovalEligibility {
  if (personOf(principal) === requesterPerson) {
    return {
      ok: false,
      code: 'REGENT_SELF_APPROVAL',
      message: 'you requested this deletion: someone else must approve it',
    }
  }
  // A bot that filed a request cannot approve it, neither as itself nor relaying for anyone: a
  // relayed person is only as real as the bot's word, and the bot is the requester's hand.
  if (principal.subject === requesterSubject || principal.subject === requesterPerson) {
    return {
      ok: false,
      code: 'REGENT_SELF_APPROVAL',
      message: `${principal.subject} filed this request: its approvals do not count, whoever it relays for`,
    }
  }
  if (isAdmin(principal)) return { ok: true, as: 'admin' }
  const refuse = (message: string) => ({ ok: false, code: 'REGENT_APPROVER_NOT_ELIGIBLE', message }) as const
  if (!hasRole(principal, 'approver')) return refuse('approving needs the approver role')
  const adminsOnly =
    !requirement.from.includes('owning-team-approvers') ||
    (requirement.count > 0 && requirement.adminCount >= requirement.count)
  if (adminsOnly) return refuse(`only admins may approve this request (${requirement.reasons.join('; ')})`)
  if (!principal.teams.some((team) => owningTeams.includes(team))) {
    return refuse(
      owningTeams.length === 0
        ? 'no team owns these repositories: only admins may approve'
        : `only approvers of ${owningTeams.join(', ')} or admins may approve this request`,
    )
  }
  return { ok: true, as: 'owning-team-approver' }
}

export interface GivenApproval {
  /** The approving person (`personOf` the approver). */
  approver: string
  /**
   * The credential that gave it (the token's subject: the bot's own when it relayed for a person).
   * Approvals count once per credential, so one bot token cannot stand in for several people.
   */
  credential?: string
  /** As `mayApprove` returned it when the approval was given. */
  as: ApproverRole
}

export interface ApprovalProgress {
  satisfied: boolean
  /** Distinct approvers that count towards the requirement. */
  approvers: number
  admins: number
  /** Approvals still needed, and how many of those must come from admins. */
  missing: number
  missingAdmins: number
}

/**
 * Where a request stands: distinct approvers and distinct credentials only (approvals relayed by one
 * bot count once); an admin's approval counts as an admin's.
 */
export function approvalProgress(
  requirement: ApprovalRequirement,
  approvals: readonly GivenApproval[],
): ApprovalProgress {
  const roleOf = new Map<string, ApproverRole>()
  const people = new Set<string>()
  for (const { approver, credential, as } of approvals) {
    if (people.has(approver)) continue
    people.add(approver)
    const key = credential ?? approver
    if (as === 'admin' || !roleOf.has(key)) roleOf.set(key, as)
  }
  const roles = [...roleOf.values()]
  const admins = roles.filter((as) => as === 'admin').length
  const others = requirement.from.includes('owning-team-approvers') ? roles.length - admins : 0
  const missingAdmins = Math.max(0, requirement.adminCount - admins)
  const missing = Math.max(missingAdmins, requirement.count - admins - others)
  return { satisfied: missing === 0, approvers: admins + others, admins, missing, missingAdmins }
}

/** Whether the approvals given meet the requirement. */
export function approvalsSatisfied(
  requirement: ApprovalRequirement,
  approvals: readonly GivenApproval[],
): boolean {
  return approvalProgress(requirement, approvals).satisfied
}
