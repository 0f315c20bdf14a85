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
      subject: Type.String({
        minLength: 1,
        maxLength: 256,
        pattern: '^[\\w.@:+-]+$',
        description: 'The Regent subject the Slack user acts as, in requests, approvals and the audit log',
      }),
      teams: Type.Array(Type.String({ minLength: 1 }), {
        default: [],
        description: 'Their teams, named as in the teams claim',
      }),
      roles: Type.Array(Type.Union(ROLES.map((role) => Type.Literal(role))), {
        default: [],
        description:
          'Their roles: `viewer`, `requester`, `approver`, `admin`; with none (the default) the user can browse and read nothing',
      }),
    },
    { additionalProperties: false },
  ),
  (user) => user.slackUserId !== undefined || user.email !== undefined,
  () => 'needs slackUserId or email',
)

export const SlackConfigSchema = Type.Object(
  {
    enabled: Type.Optional(
      Type.Boolean({
        description: 'Turn the Slack routes on or off; default: on when `signingSecret` is set',
      }),
    ),
    signingSecret: Type.Optional(
      Type.String({
        minLength: 8,
        description: 'The Slack app signing secret; setting it turns the Slack routes on',
      }),
    ),
    botToken: Type.Optional(
      Type.String({
        minLength: 8,
        description:
          'Bot token (`users:read`, `users:read.email`), needed only to map Slack users by `email`',
      }),
    ),
    apiUrl: Type.String({
      pattern: '^https?://',
      default: 'https://slack.com/api',
      description:
        'Base URL of the Slack Web API (for `users.info`); change it only for a proxy or a stand-in',
    }),
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
    outboundTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 60000,
      default: 5000,
      description:
        'Connect, header and body timeout of every call to Slack (`users.info`, answers to `response_url`)',
    }),
    userCacheMs: Type.Integer({
      minimum: 0,
      default: 600_000,
      description: 'How long a users.info answer is reused',
    }),
    users: Type.Array(SlackUserSchema, {
      default: [],
      description:
        'The Slack users Regent knows, each by `slackUserId` or `email`; anyone else is told they are not mapped and can do nothing',
    }),
  },
  { additionalProperties: false, default: {}, description: 'The Slack app Regent answers' },
)

export const ChatopsConfigSchema = Type.Object(
  { slack: SlackConfigSchema },
  { additionalProperties: false, default: {}, description: 'Chat integrations' },
)

export type SlackConfig = Static<typeof SlackConfigSchema>
export type SlackUser = Static<typeof SlackUserSchema>
