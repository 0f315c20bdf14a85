import t from 'tap'
import { Value } from 'typebox/value'
import { type GovernanceConfig, GovernanceConfigSchema } from '../../src/governance/config-schema.js'

function load(input: unknown): { config?: GovernanceConfig; problems: string[] } {
  const candidate = Value.Default(GovernanceConfigSchema, structuredClone(input))
  if (Value.Check(GovernanceConfigSchema, candidate)) return { config: candidate, problems: [] }
  return {
    problems: [...Value.Errors(GovernanceConfigSchema, candidate)].map(
      (e) => `${e.instancePath} ${e.message}`,
    ),
  }
}

t.test('an empty governance section gets the documented defaults', async (t) => {
  const { config, problems } = load({})
  t.same(problems, [])
  t.same(config, {
    teams: [],
    protections: [],
    approvals: { default: { count: 1, from: 'owning-team-approvers' }, rules: [], expireAfterHours: 168 },
    inUse: { default: 'refuse', overrides: [] },
  })
})

t.test('governance.inUse: overrides are checked like protections, levels are a closed list', async (t) => {
  const { config } = load({ inUse: { overrides: [{ repositories: 'payments/**', level: 'warn' }] } })
  t.same(config?.inUse, {
    default: 'refuse',
    overrides: [{ registry: '*', repositories: 'payments/**', level: 'warn' }],
  })
  t.match(load({ inUse: { overrides: [{ repositories: 'a/[b', level: 'warn' }] } }).problems, [
    /must be a glob/,
  ])
  t.ok(load({ inUse: { default: 'ignore' } }).problems.length > 0, 'an unknown level is refused')
})

t.test('a full governance section validates, with registry globs defaulting to *', async (t) => {
  const { config, problems } = load({
    teams: [
      {
        name: 'payments',
        repositories: [{ pattern: 'payments/**' }],
        approvals: { ownRepositories: 'none' },
      },
      {
        name: 'platform',
        repositories: [{ registry: 'prod-*', pattern: '*/base' }],
        approvals: { ownRepositories: 2 },
      },
    ],
    protections: [
      { repositories: '**', tags: ['latest'], level: 'immutable', reason: 'pinned by deployments' },
      {
        registry: 'prod',
        repositories: 'payments/**',
        tags: ['prod-*', '/v\\d+\\.\\d+\\.\\d+/'],
        level: 'admin-only',
      },
    ],
    approvals: {
      default: { count: 1, from: 'owning-team-approvers' },
      rules: [
        { when: { minItems: 20 }, count: 2, from: 'owning-team-approvers' },
        { when: { minShareOfRepository: 0.5, multipleTeams: true }, count: 2, from: 'admins' },
        { when: { hasAdminOnlyItems: true }, count: 1, from: 'admins' },
      ],
      expireAfterHours: 48,
    },
  })
  t.same(problems, [])
  t.equal(config?.teams[0]?.repositories[0]?.registry, '*')
  t.equal(config?.protections[0]?.registry, '*')
  t.equal(config?.approvals.expireAfterHours, 48)
})

t.test('invalid governance sections are refused, naming the key', async (t) => {
  const cases: Array<[name: string, input: unknown, problem: RegExp]> = [
    [
      'an unknown key on a team',
      { teams: [{ name: 'a', repositories: [{ pattern: 'a/**' }], owner: 'x' }] },
      /\/teams\/0/,
    ],
    ['a team without repositories', { teams: [{ name: 'a', repositories: [] }] }, /\/teams\/0\/repositories/],
    [
      'duplicate team names',
      {
        teams: [
          { name: 'a', repositories: [{ pattern: 'x' }] },
          { name: 'a', repositories: [{ pattern: 'y' }] },
        ],
      },
      /team names must be unique/,
    ],
    [
      'a broken repository glob',
      { teams: [{ name: 'a', repositories: [{ pattern: 'a/[b' }] }] },
      /\/teams\/0\/repositories\/0\/pattern must be a glob: unterminated \[/,
    ],
    [
      'a tag regex with a lookahead',
      { protections: [{ repositories: '**', tags: ['/a(?=b)/'], level: 'immutable' }] },
      /\/protections\/0\/tags\/0 must be a tag glob or \/regex\/: lookaheads are not supported/,
    ],
    [
      'a protection without tags',
      { protections: [{ repositories: '**', tags: [], level: 'immutable' }] },
      /tags/,
    ],
    [
      'an unknown protection level',
      { protections: [{ repositories: '**', tags: ['x'], level: 'soft' }] },
      /level/,
    ],
    [
      'ownRepositories of a wrong kind',
      { teams: [{ name: 'a', repositories: [{ pattern: 'x' }], approvals: { ownRepositories: 'some' } }] },
      /ownRepositories/,
    ],
    [
      'a share above 1',
      { approvals: { rules: [{ when: { minShareOfRepository: 1.5 }, count: 2, from: 'admins' }] } },
      /minShareOfRepository/,
    ],
    [
      'a rule without conditions',
      { approvals: { rules: [{ when: {}, count: 2, from: 'admins' }] } },
      /\/approvals\/rules\/0\/when/,
    ],
    [
      'an unknown approver group',
      { approvals: { default: { count: 1, from: 'everyone' } } },
      /\/approvals\/default\/from/,
    ],
    ['an unknown top-level key', { owners: [] }, /additional|owners/i],
  ]
  for (const [name, input, problem] of cases) {
    const { config, problems } = load(input)
    t.equal(config, undefined, `${name} is refused`)
    t.match(problems.join('\n'), problem, `${name}: the problem names the key`)
  }
})
