import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import { SlackHttp } from './slack-http.js'
import type { SlackEndpoint } from './slack-service.js'
import { SlackChatops } from './slack-service.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The urlencoded body exactly as received: Slack's signature is over these bytes. */
    slackRawBody?: string
  }
}

const SlackMessageSchema = Type.Object(
  {
    response_type: Type.Optional(Type.Union([Type.Literal('ephemeral'), Type.Literal('in_channel')])),
    replace_original: Type.Optional(Type.Boolean()),
    text: Type.String(),
    blocks: Type.Optional(Type.Array(Type.Unknown(), { description: 'Block Kit blocks' })),
  },
  { $id: 'SlackMessage', title: 'SlackMessage' },
)

const SlackHeadersSchema = Type.Object({
  'x-slack-request-timestamp': Type.Optional(Type.String({ description: 'Unix seconds' })),
  'x-slack-signature': Type.Optional(Type.String({ description: 'v0=<hex HMAC-SHA256>' })),
})

const CommandFormSchema = Type.Object(
  {
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    ssl_check: Type.Optional(
      Type.String({ description: 'Slack checking the certificate: answered with an empty 200' }),
    ),
    team_id: Type.Optional(Type.String()),
    channel_id: Type.Optional(Type.String()),
    command: Type.Optional(Type.String()),
    text: Type.Optional(Type.String({ maxLength: 4000 })),
    response_url: Type.Optional(Type.String()),
  },
  { description: 'The slash command form Slack posts (fields not listed are ignored)' },
)

const InteractionFormSchema = Type.Object(
  { payload: Type.String({ minLength: 2, description: 'JSON: a block_actions payload' }) },
  { description: 'The interaction form Slack posts' },
)

const slackRoute = {
  tags: ['chatops'],
  security: [{ slackSignature: [] }],
  consumes: ['application/x-www-form-urlencoded'],
  headers: SlackHeadersSchema,
}

/**
 * Slack's request URLs. Public (Slack carries no Regent token): the signing secret is the
 * authentication, checked before the body is even validated. Registered without fastify-plugin,
 * so the urlencoded parser below exists only for these two routes.
 */
export const slackRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const slack = config.chatops.slack
  const enabled = slack.enabled ?? slack.signingSecret !== undefined
  if (enabled && !slack.signingSecret)
    throw new Error('chatops.slack.enabled is true but chatops.slack.signingSecret is not set')
  const service =
    enabled && slack.signingSecret
      ? (() => {
          const http = new SlackHttp(slack, app.log)
          const chatops = new SlackChatops(
            app.db,
            app.deletions,
            app.browse,
            { ...slack, signingSecret: slack.signingSecret },
            http,
            app.log,
            app.refusals,
          )
          app.addHook('onClose', async () => {
            await chatops.drain()
            await http.close()
          })
          return chatops
        })()
      : undefined

  app.addSchema(SlackMessageSchema)
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done) => {
      const raw = typeof body === 'string' ? body : body.toString('utf8')
      request.slackRawBody = raw
      done(null, Object.fromEntries(new URLSearchParams(raw)))
    },
  )

  const limited = { public: true, rateLimit: app.refusals.rateLimit('slack', config.publicRoutes.rateLimit) }

  const verify = (endpoint: SlackEndpoint) => async (request: FastifyRequest) => {
    if (!service) throw new errors.SLACK_NOT_CONFIGURED()
    if (request.slackRawBody === undefined)
      throw new errors.UNSUPPORTED_MEDIA_TYPE(String(request.headers['content-type'] ?? 'none'))
    const header = (name: string) => {
      const value = request.headers[name]
      return typeof value === 'string' ? value : undefined
    }
    const timestamp = header('x-slack-request-timestamp')
    const signature = header('x-slack-signature')
    await service.verify(
      endpoint,
      requestContext(request),
      { ...(timestamp ? { timestamp } : {}), ...(signature ? { signature } : {}) },
      request.slackRawBody,
    )
  }

  app.post(
    '/v1/chatops/slack/commands',
    {
      config: limited,
      // Before validation: an unsigned body is refused as unsigned, not as malformed.
      preValidation: verify('commands'),
      schema: {
        ...slackRoute,
        summary: 'Slack slash command `/regent …` (signed by Slack)',
        description:
          'Verified with the signing secret (`X-Slack-Signature`, `X-Slack-Request-Timestamp`, 5 minutes); a replayed request is refused. Always answers 200 with a Block Kit message once verified; slow work is answered later through `response_url`.',
        body: CommandFormSchema,
        response: { 200: Type.Ref('SlackMessage'), ...errorResponses(400, 401, 404, 415, 429) },
      },
    },
    async (request) => {
      const { user_id: userId, ...form } = request.body
      // Slack sends ssl_check=1 (and no user) while it checks the certificate of a command URL.
      if (form.ssl_check === '1') return { text: '' }
      if (!userId) throw new errors.VALIDATION('user_id is missing')
      return service!.command(requestContext(request), { ...form, user_id: userId })
    },
  )

  app.post(
    '/v1/chatops/slack/interactions',
    {
      config: limited,
      preValidation: verify('interactions'),
      schema: {
        ...slackRoute,
        summary: 'Slack interactions: the Approve / Reject buttons on a request (signed by Slack)',
        description:
          'Verified like the commands. The click is decided as the clicking Slack user; the answer replaces or follows up the message through `response_url`.',
        body: InteractionFormSchema,
        response: {
          200: Type.Null({ description: 'Acknowledged; the answer goes to response_url' }),
          ...errorResponses(400, 401, 404, 415, 429),
        },
      },
    },
    async (request, reply) => {
      await service!.interaction(requestContext(request), request.body.payload)
      return reply.code(200).send(null)
    },
  )
}
