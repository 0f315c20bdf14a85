import { type Static, Type } from 'typebox'
import { globProblem, tagPatternProblem } from './globs.js'

/**
 * The `governance` section of the config: who owns which repositories, what may never (or only
 * by an admin) be deleted, and how many approvals a deletion needs. Patterns are checked when the
 * config loads, so a typo stops the process instead of silently matching nothing.
 */

const GlobSchema = (options: { default?: string; description?: string } = {}) =>
  Type.Refine(
    Type.String({ minLength: 1, maxLength: 1000, ...options }),
    (value: string) => globProblem(value) === undefined,
    (value: string) => `must be a glob: ${globProblem(value)}`,
  )

const TagPatternSchema = Type.Refine(
  Type.String({
    minLength: 1,
    maxLength: 1000,
    description: 'A glob (`prod-*`) or an anchored regex written `/…/` (`/v\\d+\\.\\d+\\.\\d+/`)',
  }),
  (value: string) => tagPatternProblem(value) === undefined,
  (value: string) => `must be a tag glob or /regex/: ${tagPatternProblem(value)}`,
)

const REPOSITORY_GLOB = 'Repository glob (doublestar: `*` stays within one path segment, `**` crosses them)'

export const ApproverGroupSchema = Type.Union([Type.Literal('owning-team-approvers'), Type.Literal('admins')])
export type ApproverGroup = Static<typeof ApproverGroupSchema>

export const TeamRepositorySchema = Type.Object(
  {
    registry: GlobSchema({ default: '*', description: 'Registry names this entry covers' }),
    pattern: GlobSchema({ description: 'Repositories, e.g. `payments/**`' }),
  },
  { additionalProperties: false },
)

export const TeamSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'As it appears in the teams claim' }),
    repositories: Type.Array(TeamRepositorySchema, {
      minItems: 1,
      description: 'What the team owns: registry and repository globs',
    }),
    approvals: Type.Optional(
      Type.Object(
        {
          ownRepositories: Type.Union([Type.Literal('none'), Type.Integer({ minimum: 0, maximum: 10 })], {
            description:
              'Approvals needed for a request within this team\u2019s own repositories that no rule escalates',
          }),
        },
        {
          additionalProperties: false,
          description: "The team's own approval setting, in place of `governance.approvals.default`",
        },
      ),
    ),
  },
  { additionalProperties: false },
)

export const ProtectionSchema = Type.Object(
  {
    registry: GlobSchema({ default: '*', description: 'Registry name glob; `*`: every registry' }),
    repositories: GlobSchema({ description: REPOSITORY_GLOB }),
    tags: Type.Array(TagPatternSchema, {
      minItems: 1,
      description: 'Tag patterns; a tag matching any of them is protected',
    }),
    level: Type.Union([Type.Literal('immutable'), Type.Literal('admin-only')], {
      description:
        '`immutable` (never deletable through Regent) or `admin-only` (needs an admin\u2019s approval)',
    }),
    reason: Type.Optional(
      Type.String({ minLength: 1, maxLength: 500, description: 'Shown in plans and refusals' }),
    ),
  },
  { additionalProperties: false },
)

export const ApprovalConditionSchema = Type.Object(
  {
    minItems: Type.Optional(
      Type.Integer({ minimum: 1, description: 'The plan has at least this many items' }),
    ),
    minShareOfRepository: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: 'The plan removes at least this share (0–1) of some repository\u2019s tags',
      }),
    ),
    hasAdminOnlyItems: Type.Optional(
      Type.Boolean({
        description: 'The plan touches an `admin-only` tag (such items always need an admin anyway)',
      }),
    ),
    multipleTeams: Type.Optional(
      Type.Boolean({ description: 'The plan spans repositories of more than one team' }),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'The rule applies when every condition given holds',
  },
)

export const ApprovalRuleSchema = Type.Object(
  {
    when: ApprovalConditionSchema,
    count: Type.Integer({ minimum: 0, maximum: 10, description: 'Approvals needed when the rule applies' }),
    from: Type.Union([ApproverGroupSchema], {
      description:
        '`owning-team-approvers`, or `admins`: then that many of the approvals must be admins\u2019',
    }),
  },
  { additionalProperties: false },
)

export const ApprovalsSchema = Type.Object(
  {
    default: Type.Object(
      {
        count: Type.Integer({
          minimum: 0,
          maximum: 10,
          default: 1,
          description: 'Approvals needed; `0`: requests are approved as they are filed',
        }),
        from: Type.Union([ApproverGroupSchema], {
          default: 'owning-team-approvers',
          description:
            '`owning-team-approvers` (approvers in a team owning the repositories, or admins) or `admins`',
        }),
      },
      { additionalProperties: false, default: {}, description: 'What applies when no rule does' },
    ),
    rules: Type.Array(ApprovalRuleSchema, {
      default: [],
      description:
        'Blast-radius rules; every rule whose conditions all hold applies and can only raise what is needed',
    }),
    expireAfterHours: Type.Integer({
      minimum: 1,
      maximum: 24 * 90,
      default: 168,
      description: 'Requests still awaiting approval expire after this many hours (7 days)',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'How many approvals a deletion needs, and from whom; nobody approves their own request',
  },
)

export const InUseLevelSchema = Type.Union([
  Type.Literal('refuse'),
  Type.Literal('admin-only'),
  Type.Literal('warn'),
])
export type InUseLevel = Static<typeof InUseLevelSchema>

export const InUseOverrideSchema = Type.Object(
  {
    registry: GlobSchema({ default: '*', description: 'Registry name glob; `*`: every registry' }),
    repositories: GlobSchema({ description: REPOSITORY_GLOB }),
    level: Type.Union([InUseLevelSchema], {
      description: '`refuse`, `admin-only` or `warn`, as for `governance.inUse.default`',
    }),
    reason: Type.Optional(
      Type.String({ minLength: 1, maxLength: 500, description: 'Shown with the verdict' }),
    ),
  },
  { additionalProperties: false },
)

export const InUseSchema = Type.Object(
  {
    default: Type.Union([InUseLevelSchema], {
      default: 'refuse',
      description:
        'What deleting an image in use means: `refuse`, `admin-only` (an admin must approve) or `warn` (the plan says so)',
    }),
    overrides: Type.Array(InUseOverrideSchema, {
      default: [],
      description: 'Per registry and repository pattern; the first matching override wins',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'What deleting an image that is in use (or whose usage is unknown) means',
  },
)

export const GovernanceConfigSchema = Type.Object(
  {
    teams: Type.Refine(
      Type.Array(TeamSchema, {
        default: [],
        description:
          'The teams and the repositories they own (names unique); only an admin may request deletions in a repository no team owns',
      }),
      (teams) => new Set(teams.map((team) => team.name)).size === teams.length,
      () => 'team names must be unique',
    ),
    protections: Type.Array(ProtectionSchema, {
      default: [],
      description:
        'Tags that may not be deleted, or only with an admin\u2019s approval; where several match, `immutable` wins',
    }),
    approvals: ApprovalsSchema,
    inUse: InUseSchema,
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Who owns which repositories, what is protected, and how many approvals a deletion needs',
  },
)

export type GovernanceConfig = Static<typeof GovernanceConfigSchema>
export type TeamConfig = Static<typeof TeamSchema>
export type ProtectionConfig = Static<typeof ProtectionSchema>
export type ApprovalRuleConfig = Static<typeof ApprovalRuleSchema>
export type ApprovalsConfig = Static<typeof ApprovalsSchema>
export type InUseConfig = Static<typeof InUseSchema>
