import { type Static, Type } from 'typebox'
import { ROLES } from '../auth/principal.js'

/**
 * The `chatops` section: the Slack app Regent answers, and who each Slack user is in Regent.
 * Slack users get exactly the subject, teams and roles written here; nothing in a Slack request
 * can widen them.
 */

export const SlackUserSchema = Type.Refine(
  Type.Object(
    {
      slackUserId: Type.Optional(
        Type.String({ pattern: '^[UW][A-Z0-9]{2,40}$', description: 'Slack member id, e.g. `U024BE7LH`' }),
      ),
      email: Type.Optional(
        Type.String({
          minLength: 3,
          maxLength: 320,
          pattern: '^[^@\\s]+@[^@\\s]+$',
          description: 'Matched against the Slack profile e-mail (needs `chatops.slack.botToken`)',
        }),
      ),
      subject: Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\w.@:+-]+$' }),
      teams: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
      roles: Type.Array(Type.Union(ROLES.map((role) => Type.Literal(role))), { default: [] }),
    },
    { additionalProperties: false },
  ),
  (user) => user.slackUserId !== undefined || user.email !== undefined,
  () => 'needs slackUserId or email',
)

export const SlackConfigSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'Default: enabled when `signingSecret` is set' })),
    signingSecret: Type.Optional(Type.String({ minLength: 8, description: 'The Slack app signing secret' })),
    botToken: Type.Optional(
      Type.String({ minLength: 8, description: 'Bot token (users:read.email) for e-mail mapping' }),
    ),
    apiUrl: Type.String({ pattern: '^https?://', default: 'https://slack.com/api' }),
    responseUrlOrigins: Type.Array(Type.String({ pattern: '^https?://[^/]+$' }), {
      default: ['https://hooks.slack.com'],
      description: 'The only origins Regent posts deferred answers to',
    }),
    replyBudgetMs: Type.Integer({
      minimum: 100,
      maximum: 2900,
      default: 2500,
      description: 'Work not done by then is answered later through response_url',
    }),
    outboundTimeoutMs: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
    userCacheMs: Type.Integer({
      minimum: 0,
      default: 600_000,
      description: 'How long a users.info answer is reused',
    }),
    users: Type.Array(SlackUserSchema, { default: [] }),
  },
  { additionalProperties: false, default: {} },
)

export const ChatopsConfigSchema = Type.Object(
  { slack: SlackConfigSchema },
  { additionalProperties: false, default: {} },
)

export type SlackConfig = Static<typeof SlackConfigSchema>
export type SlackUser = Static<typeof SlackUserSchema>
