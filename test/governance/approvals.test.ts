import t from 'tap'
import {
  type ApprovalRequirement,
  approvalProgress,
  approvalsSatisfied,
  type GivenApproval,
  mayApprove,
  type PlanRepositorySummary,
  type PlanSummary,
  requiredApprovals,
} from '../../src/governance/approvals.js'
import { governance, principal } from './fixtures.js'

const config = governance({
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
    { name: 'platform', repositories: [{ pattern: 'platform/**' }] },
    {
      name: 'data',
      repositories: [{ pattern: 'data/**' }, { pattern: 'shared/**' }],
      approvals: { ownRepositories: 2 },
    },
    { name: 'ml', repositories: [{ pattern: 'shared/**' }], approvals: { ownRepositories: 'none' } },
  ],
  approvals: {
    default: { count: 1, from: 'owning-team-approvers' },
    rules: [
      { when: { minItems: 20 }, count: 2, from: 'owning-team-approvers' },
      { when: { multipleTeams: true }, count: 2, from: 'owning-team-approvers' },
      { when: { minShareOfRepository: 0.5, minItems: 5 }, count: 2, from: 'admins' },
    ],
  },
})

function repo(
  repository: string,
  owningTeams: string[],
  itemsInRepo: number,
  totalTags = 100,
): PlanRepositorySummary {
  return { registry: 'main', repository, totalTags, itemsInRepo, owningTeams }
}

function plan(repositories: PlanRepositorySummary[], adminOnlyItems = 0): PlanSummary {
  return {
    items: repositories.reduce((n, r) => n + r.itemsInRepo, 0),
    repositories,
    adminOnlyItems,
    teams: [...new Set(repositories.flatMap((r) => r.owningTeams))],
  }
}

t.test('required approvals by blast radius', async (t) => {
  const cases: Array<
    [name: string, summary: PlanSummary, count: number, from: string[], adminCount: number, reason?: RegExp]
  > = [
    [
      'a small request in a team with no approvals needs none',
      plan([repo('payments/api', ['payments'], 3)]),
      0,
      ['owning-team-approvers'],
      0,
      /payments own every repository.*no approval needed/,
    ],
    [
      'a small request in a team without a setting needs the default',
      plan([repo('platform/base', ['platform'], 3)]),
      1,
      ['owning-team-approvers'],
      0,
      /default: 1 approval/,
    ],
    [
      'a team setting of 2 applies to its own repositories',
      plan([repo('data/etl', ['data'], 1)]),
      2,
      ['owning-team-approvers'],
      0,
    ],
    [
      'an unowned repository takes the default',
      plan([repo('misc/thing', [], 1)]),
      1,
      ['owning-team-approvers'],
      0,
    ],
    [
      'an admin-only item needs an admin, even in a no-approval team',
      plan([repo('payments/api', ['payments'], 3)], 1),
      1,
      ['owning-team-approvers', 'admins'],
      1,
      /1 admin-only item: an admin must approve/,
    ],
    [
      'above the configured item count, two approvers',
      plan([repo('payments/api', ['payments'], 25, 1000)]),
      2,
      ['owning-team-approvers'],
      0,
      /rules\[0\] \(25 items, at least 20\)/,
    ],
    [
      'exactly at the item count, two approvers',
      plan([repo('platform/base', ['platform'], 20, 1000)]),
      2,
      ['owning-team-approvers'],
      0,
    ],
    [
      'more than one team\u2019s repositories, two approvers',
      plan([repo('payments/api', ['payments'], 1), repo('platform/base', ['platform'], 1)]),
      2,
      ['owning-team-approvers'],
      0,
      /repositories of payments, platform/,
    ],
    [
      'one repository two teams share is not spread over teams; the strictest team setting wins',
      plan([repo('shared/models', ['data', 'ml'], 1)]),
      2,
      ['owning-team-approvers'],
      0,
      /data, ml own every repository/,
    ],
    [
      'half of a repository\u2019s tags (and 5+ items) needs two admins',
      plan([repo('platform/base', ['platform'], 6, 10)]),
      2,
      ['owning-team-approvers', 'admins'],
      2,
      /6 of 10 tags of platform\/base, at least 50%/,
    ],
    [
      'every condition of a rule must hold: a big share but few items',
      plan([repo('platform/base', ['platform'], 2, 3)]),
      1,
      ['owning-team-approvers'],
      0,
    ],
    [
      'rules combine: big, spread and with admin-only items',
      plan([repo('payments/api', ['payments'], 15), repo('platform/base', ['platform'], 10)], 2),
      2,
      ['owning-team-approvers', 'admins'],
      1,
    ],
  ]
  for (const [name, summary, count, from, adminCount, reason] of cases) {
    const requirement = requiredApprovals(config, summary)
    t.same(
      { count: requirement.count, from: requirement.from, adminCount: requirement.adminCount },
      { count, from, adminCount },
      name,
    )
    if (reason) t.match(requirement.reasons.join('\n'), reason, `${name}: the reason says why`)
  }
})

t.test('a default that only admins may give makes every approver an admin', async (t) => {
  const strict = governance({ approvals: { default: { count: 2, from: 'admins' } } })
  const requirement = requiredApprovals(strict, plan([repo('x/y', [], 1)]))
  t.same(
    { count: requirement.count, from: requirement.from, adminCount: requirement.adminCount },
    { count: 2, from: ['admins'], adminCount: 2 },
  )
})

const twoFromTeam: ApprovalRequirement = {
  count: 2,
  from: ['owning-team-approvers'],
  adminCount: 0,
  reasons: ['rules[0]'],
}
const oneAdmin: ApprovalRequirement = {
  count: 1,
  from: ['owning-team-approvers', 'admins'],
  adminCount: 1,
  reasons: ['1 admin-only item'],
}
const twoWithAnAdmin: ApprovalRequirement = {
  count: 2,
  from: ['owning-team-approvers', 'admins'],
  adminCount: 1,
  reasons: ['x'],
}

t.test('who may approve', async (t) => {
  const approver = (subject: string, teams: string[], fields = {}) =>
    principal(subject, { roles: ['approver'], teams, ...fields })
  const cases: Array<
    [name: string, who: ReturnType<typeof principal>, requirement: ApprovalRequirement, result: object]
  > = [
    [
      'an approver of an owning team',
      approver('bob', ['payments']),
      twoFromTeam,
      { ok: true, as: 'owning-team-approver' },
    ],
    ['an admin', principal('root', { roles: ['admin'] }), twoFromTeam, { ok: true, as: 'admin' }],
    [
      'the requester themself',
      approver('ann', ['payments']),
      twoFromTeam,
      { ok: false, code: 'REGENT_SELF_APPROVAL' },
    ],
    [
      'the requester through a bot',
      principal('chatbot', { roles: ['approver', 'admin'], onBehalfOf: 'ann', channel: 'slack' }),
      twoFromTeam,
      { ok: false, code: 'REGENT_SELF_APPROVAL' },
    ],
    [
      'an admin who is the requester',
      principal('ann', { roles: ['admin'] }),
      oneAdmin,
      { ok: false, code: 'REGENT_SELF_APPROVAL' },
    ],
    [
      'another person through a bot',
      principal('chatbot', { roles: ['approver'], teams: ['payments'], onBehalfOf: 'bob', channel: 'slack' }),
      twoFromTeam,
      { ok: true, as: 'owning-team-approver' },
    ],
    [
      'an approver of another team',
      approver('carl', ['platform']),
      twoFromTeam,
      { ok: false, code: 'REGENT_APPROVER_NOT_ELIGIBLE' },
    ],
    [
      'an owning-team member without the approver role',
      principal('dan', { roles: ['requester'], teams: ['payments'] }),
      twoFromTeam,
      { ok: false, code: 'REGENT_APPROVER_NOT_ELIGIBLE' },
    ],
    [
      'an owning-team approver when only an admin may approve',
      approver('bob', ['payments']),
      oneAdmin,
      { ok: false, code: 'REGENT_APPROVER_NOT_ELIGIBLE' },
    ],
    [
      'an owning-team approver when one of two must be an admin',
      approver('bob', ['payments']),
      twoWithAnAdmin,
      { ok: true, as: 'owning-team-approver' },
    ],
    [
      'an admin when an admin is needed',
      principal('root', { roles: ['admin'] }),
      oneAdmin,
      { ok: true, as: 'admin' },
    ],
  ]
  for (const [name, who, requirement, result] of cases) {
    t.match(mayApprove(who, 'ann', requirement, ['payments']), result, name)
  }
  const refused = mayApprove(approver('carl', ['platform']), 'ann', twoFromTeam, ['payments'])
  t.match(
    refused,
    { message: /only approvers of payments or admins/ },
    'the refusal names the teams that may approve',
  )
  t.match(mayApprove(approver('bob', ['payments']), 'ann', oneAdmin, ['payments']), {
    message: /only admins may approve.*admin-only/,
  })
})

t.test('approvals are satisfied by enough distinct approvers, with admins where needed', async (t) => {
  const team = (approver: string): GivenApproval => ({ approver, as: 'owning-team-approver' })
  const admin = (approver: string): GivenApproval => ({ approver, as: 'admin' })
  const none: ApprovalRequirement = { count: 0, from: ['owning-team-approvers'], adminCount: 0, reasons: [] }
  const adminsOnly: ApprovalRequirement = { count: 2, from: ['admins'], adminCount: 2, reasons: [] }
  const cases: Array<
    [name: string, requirement: ApprovalRequirement, approvals: GivenApproval[], satisfied: boolean]
  > = [
    ['nothing needed, nothing given', none, [], true],
    ['two needed, one given', twoFromTeam, [team('bob')], false],
    ['two needed, two distinct given', twoFromTeam, [team('bob'), team('eve')], true],
    ['two needed, the same approver twice', twoFromTeam, [team('bob'), team('bob')], false],
    ['an admin approval counts for a team requirement', twoFromTeam, [team('bob'), admin('root')], true],
    ['an admin needed, a team approver given', oneAdmin, [team('bob')], false],
    ['an admin needed, an admin given', oneAdmin, [admin('root')], true],
    [
      'two with an admin: two team approvers are not enough',
      twoWithAnAdmin,
      [team('bob'), team('eve')],
      false,
    ],
    ['two with an admin: a team approver and an admin', twoWithAnAdmin, [team('bob'), admin('root')], true],
    [
      'two with an admin: one admin twice is one approver',
      twoWithAnAdmin,
      [admin('root'), admin('root')],
      false,
    ],
    [
      'admins only: team approvals do not count',
      adminsOnly,
      [admin('root'), team('bob'), team('eve')],
      false,
    ],
    ['admins only: two admins', adminsOnly, [admin('root'), admin('sue')], true],
  ]
  for (const [name, requirement, approvals, satisfied] of cases) {
    t.equal(approvalsSatisfied(requirement, approvals), satisfied, name)
  }
  t.same(approvalProgress(twoWithAnAdmin, [team('bob'), team('eve')]), {
    satisfied: false,
    approvers: 2,
    admins: 0,
    missing: 1,
    missingAdmins: 1,
  })
})
