import { type Static, Type } from 'typebox'

/**
 * The `notifications` section: outbound webhooks. Secrets only by reference to an environment
 * variable (`secretEnv`), never in the file or the database, so the config can be committed.
 */

const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$'

export const WebhookConfigSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
      description: 'Unique; deliveries name their webhook by it',
    }),
    url: Type.String({ pattern: '^https?://', description: 'Where deliveries are POSTed' }),
    events: Type.Array(
      Type.String({
        pattern: '^(\\*|[a-z_]+(\\.[a-z_]+)*(\\.\\*)?)$',
        description: 'An event type, `*`, or a prefix glob such as `deletion.*`',
      }),
      {
        minItems: 1,
        default: ['*'],
        description: 'Which events it gets (default: all); a pattern matching no event type stops the start',
      },
    ),
    format: Type.Union([Type.Literal('json'), Type.Literal('cloudevents'), Type.Literal('slack')], {
      default: 'json',
      description:
        "`json` (Regent's own envelope), `cloudevents` (CloudEvents 1.0 structured JSON) or `slack` (a Slack incoming-webhook message)",
    }),
    secretEnv: Type.Optional(
      Type.String({
        pattern: ENV_NAME,
        description: 'Environment variable holding the HMAC secret (required for json and cloudevents)',
      }),
    ),
    teams: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: "Only events about these teams' repositories",
      }),
    ),
    registries: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Only events of these registries' }),
    ),
  },
  { additionalProperties: false },
)

export const NotificationsConfigSchema = Type.Object(
  {
    webhooks: Type.Array(WebhookConfigSchema, {
      default: [],
      description: 'The webhooks events are delivered to; none by default',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 50,
      default: 8,
      description: 'Attempts of one delivery before it is marked failed',
    }),
    timeoutMs: Type.Integer({
      minimum: 100,
      maximum: 120_000,
      default: 10_000,
      description: 'Connect, header and body timeout of each attempt',
    }),
    source: Type.String({
      minLength: 1,
      default: '/regent',
      description: 'CloudEvents `source` attribute (a URI reference)',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Outbound webhooks for deletion, GC and retention policy events, delivered by the job queue',
  },
)

export type WebhookConfig = Static<typeof WebhookConfigSchema>
export type NotificationsConfig = Static<typeof NotificationsConfigSchema>
