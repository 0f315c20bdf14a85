import { createSigner } from 'fast-jwt'

/**
 * What the demo configures: two teams, protections for releases and `latest`, approval rules, GC
 * with the read-only restart around the collector, and the people whose tokens it prints.
 */

export interface DemoPerson {
  /** The shell variable the tour uses for this person's token. */
  variable: string
  sub: string
  teams: string[]
  roles: string[]
  what: string
}

export const DEMO_PEOPLE: DemoPerson[] = [
  {
    variable: 'REQUESTER',
    sub: 'rita',
    teams: ['payments'],
    roles: ['requester'],
    what: 'files deletions for the payments team',
  },
  {
    variable: 'APPROVER',
    sub: 'alex',
    teams: ['payments'],
    roles: ['requester', 'approver'],
    what: "approves the payments team's deletions, restores them, manages its retention policies",
  },
  {
    variable: 'ADMIN',
    sub: 'ada',
    teams: [],
    roles: ['admin'],
    what: 'runs garbage collection, sees everything',
  },
]

export interface DemoConfigInput {
  port: number
  dataDir: string
  jwtSecret: string
  registryUrl: string
  registryBin: string
  registryConfigPath: string
  storagePath: string
  /** argv of the GC hook commands, each ending with the control URL's mode. */
  hook: (mode: 'read-only' | 'read-write') => string[]
}

/** Config keys as a config file would set them (validated by loadConfig like any other). */
export function demoConfig(input: DemoConfigInput): Record<string, unknown> {
  return {
    port: input.port,
    host: '127.0.0.1',
    dataDir: input.dataDir,
    logLevel: 'info',
    auth: { jwtSecret: input.jwtSecret },
    graphql: { graphiql: true },
    registries: [
      {
        name: 'local',
        url: input.registryUrl,
        gc: {
          executor: {
            kind: 'command',
            argv: [input.registryBin, 'garbage-collect', input.registryConfigPath],
            timeoutMs: 600_000,
          },
          before: input.hook('read-only'),
          after: input.hook('read-write'),
          // Uploads already under way get a moment to finish before the collector looks.
          waitMs: 1000,
          dryRunFirst: true,
          abortIfShareAbove: 0.5,
          storagePath: input.storagePath,
          verify: 'all',
          // A burst of deletions is followed by one GC two minutes after its last deletion.
          quietPeriodMs: 120_000,
        },
      },
    ],
    governance: {
      teams: [
        { name: 'payments', repositories: [{ pattern: 'payments/**' }] },
        { name: 'search', repositories: [{ pattern: 'search/**' }], approvals: { ownRepositories: 'none' } },
      ],
      protections: [
        { repositories: '**', tags: ['latest'], level: 'admin-only', reason: 'what deployments pull' },
        {
          repositories: '**',
          tags: ['/\\d+\\.\\d+\\.\\d+/'],
          level: 'immutable',
          reason: 'released versions',
        },
      ],
      approvals: {
        default: { count: 1, from: 'owning-team-approvers' },
        rules: [
          { when: { minShareOfRepository: 0.5 }, count: 2, from: 'owning-team-approvers' },
          { when: { multipleTeams: true }, count: 1, from: 'admins' },
        ],
      },
    },
  }
}

/** The payments team's retention policy, created through the API as its approver would. */
export const DEMO_POLICY = {
  name: 'payments-cleanup',
  team: 'payments',
  registry: 'local',
  repositories: ['payments/**'],
  mode: 'propose',
  default: 'keep',
  rules: [
    { description: 'releases', select: { include: ['/\\d+\\.\\d+\\.\\d+/'] }, keep: { always: true } },
    {
      description: 'recent builds',
      select: { tagStatus: 'tagged' },
      keep: { within: { age: '7d', by: 'created' } },
    },
    {
      description: 'old feature branches and pull requests',
      select: { include: ['feature-*', 'pr-*'] },
      expire: { olderThan: { age: '30d', by: 'created' } },
    },
  ],
}

/** A token the demo's Regent accepts for `person`, valid for `ttlMs`. */
export function demoToken(secret: string, person: DemoPerson, ttlMs = 12 * 3_600_000): string {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlMs })
  return sign({ sub: person.sub, groups: person.teams, roles: person.roles })
}
