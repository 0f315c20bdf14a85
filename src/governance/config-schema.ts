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
    repositories: Type.Array(TeamRepositorySchema, { minItems: 1 }),
    approvals: Type.Optional(
      Type.Object(
        {
          ownRepositories: Type.Union([Type.Literal('none'), Type.Integer({ minimum: 0, maximum: 10 })], {
            description:
              'Approvals needed for a request within this team\u2019s own repositories that no rule escalates',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export const ProtectionSchema = Type.Object(
  {
    registry: GlobSchema({ default: '*' }),
    repositories: GlobSchema(),
    tags: Type.Array(TagPatternSchema, { minItems: 1 }),
    level: Type.Union([Type.Literal('immutable'), Type.Literal('admin-only')]),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  },
  { additionalProperties: false },
)

export const ApprovalConditionSchema = Type.Object(
  {
    minItems: Type.Optional(Type.Integer({ minimum: 1 })),
    minShareOfRepository: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    hasAdminOnlyItems: Type.Optional(Type.Boolean()),
    multipleTeams: Type.Optional(Type.Boolean()),
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
    count: Type.Integer({ minimum: 0, maximum: 10 }),
    from: ApproverGroupSchema,
  },
  { additionalProperties: false },
)

export const ApprovalsSchema = Type.Object(
  {
    default: Type.Object(
      {
        count: Type.Integer({ minimum: 0, maximum: 10, default: 1 }),
        from: Type.Union([ApproverGroupSchema], { default: 'owning-team-approvers' }),
      },
      { additionalProperties: false, default: {} },
    ),
    rules: Type.Array(ApprovalRuleSchema, { default: [] }),
    expireAfterHours: Type.Integer({ minimum: 1, maximum: 24 * 90, default: 168 }),
  },
  { additionalProperties: false, default: {} },
)

export const InUseLevelSchema = Type.Union([
  Type.Literal('refuse'),
  Type.Literal('admin-only'),
  Type.Literal('warn'),
])
export type InUseLevel = Static<typeof InUseLevelSchema>

export const InUseOverrideSchema = Type.Object(
  {
    registry: GlobSchema({ default: '*' }),
    repositories: GlobSchema(),
    level: InUseLevelSchema,
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
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
  { additionalProperties: false, default: {} },
)

export const GovernanceConfigSchema = Type.Object(
  {
    teams: Type.Refine(
      Type.Array(TeamSchema, { default: [] }),
      (teams) => new Set(teams.map((team) => team.name)).size === teams.length,
      () => 'team names must be unique',
    ),
    protections: Type.Array(ProtectionSchema, { default: [] }),
    approvals: ApprovalsSchema,
    inUse: InUseSchema,
  },
  { additionalProperties: false, default: {} },
)

export type GovernanceConfig = Static<typeof GovernanceConfigSchema>
export type TeamConfig = Static<typeof TeamSchema>
export type ProtectionConfig = Static<typeof ProtectionSchema>
export type ApprovalRuleConfig = Static<typeof ApprovalRuleSchema>
export type ApprovalsConfig = Static<typeof ApprovalsSchema>
export type InUseConfig = Static<typeof InUseSchema>
