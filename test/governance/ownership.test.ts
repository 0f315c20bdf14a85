import t from 'tap'
import { mayRequest, owningTeams } from '../../src/governance/ownership.js'
import { governance, principal } from './fixtures.js'

const config = governance({
  teams: [
    {
      name: 'payments',
      repositories: [{ pattern: 'payments/**' }, { registry: 'legacy', pattern: 'pay-*' }],
    },
    { name: 'platform', repositories: [{ pattern: '*/base' }, { registry: 'prod-*', pattern: 'infra/**' }] },
    { name: 'sre', repositories: [{ pattern: '**/base' }] },
  ],
})

t.test('owningTeams names every team whose registry and repository patterns both match', async (t) => {
  const cases: Array<[registry: string, repository: string, teams: string[]]> = [
    ['main', 'payments/api', ['payments']],
    ['main', 'payments', ['payments']],
    ['main', 'payments/eu/api', ['payments']],
    ['main', 'paymentsx/api', []],
    ['legacy', 'pay-api', ['payments']],
    ['main', 'pay-api', []],
    ['main', 'payments/base', ['payments', 'platform', 'sre']],
    ['main', 'a/b/base', ['sre']],
    ['prod-eu', 'infra/dns', ['platform']],
    ['staging', 'infra/dns', []],
    ['main', 'unowned/thing', []],
  ]
  for (const [registry, repository, teams] of cases) {
    t.same(
      owningTeams(config, registry, repository),
      teams,
      `${registry} ${repository} → [${teams.join(', ')}]`,
    )
  }
})

t.test('mayRequest: an owning-team requester of every repository, or an admin', async (t) => {
  const repos = (...owners: string[][]) =>
    owners.map((owningTeams, i) => ({ repository: `repo-${i}`, owningTeams }))
  const cases: Array<
    [
      name: string,
      who: ReturnType<typeof principal>,
      repositories: ReturnType<typeof repos>,
      ok: boolean,
      message?: RegExp,
    ]
  > = [
    [
      'a requester in the owning team',
      principal('ann', { roles: ['requester'], teams: ['payments'] }),
      repos(['payments']),
      true,
    ],
    [
      'a requester in an owning team of each repository (different teams)',
      principal('ann', { roles: ['requester'], teams: ['payments', 'platform'] }),
      repos(['payments'], ['platform', 'sre']),
      true,
    ],
    [
      'a requester outside one repository\u2019s owners',
      principal('ann', { roles: ['requester'], teams: ['payments'] }),
      repos(['payments'], ['platform']),
      false,
      /repo-1 is owned by platform, and you are in none of them/,
    ],
    [
      'a team member without the requester role',
      principal('ann', { roles: ['viewer', 'approver'], teams: ['payments'] }),
      repos(['payments']),
      false,
      /requester role/,
    ],
    [
      'a requester for an unowned repository',
      principal('ann', { roles: ['requester'], teams: ['payments'] }),
      repos([]),
      false,
      /owned by no team/,
    ],
    ['an admin outside every team', principal('root', { roles: ['admin'] }), repos(['payments'], []), true],
    [
      'a requester for an empty plan',
      principal('ann', { roles: ['requester'], teams: ['payments'] }),
      repos(),
      false,
      /names no repository/,
    ],
  ]
  for (const [name, who, repositories, ok, message] of cases) {
    const verdict = mayRequest(who, repositories)
    t.equal(verdict.ok, ok, name)
    if (!verdict.ok) {
      t.equal(verdict.code, 'REGENT_REQUESTER_NOT_ELIGIBLE')
      t.match(verdict.message, message ?? /./, `${name}: says why`)
    }
  }
  t.same(mayRequest(principal('root', { roles: ['admin'] }), repos(['x'])), { ok: true, as: 'admin' })
  t.same(mayRequest(principal('ann', { roles: ['requester'], teams: ['x'] }), repos(['x'])), {
    ok: true,
    as: 'owning-team-member',
  })
})
