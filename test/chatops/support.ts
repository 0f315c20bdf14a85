import { createHmac } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { authHeaders } from '../helper.js'
import type { CapturedRequest, CaptureServer } from '../helpers/capture-server.js'

/** The signing secret test apps share with the "Slack" these helpers play. */
export const SLACK_SECRET = 'test-slack-signing-secret-8f3a'

export const admin = authHeaders({ sub: 'root', roles: ['admin'] })

/** Slack users of the tests: a requester and an approver of payments, and nobody (unmapped). */
export const RITA = 'U0RITA'
export const AMOS = 'U0AMOS'
export const NOBODY = 'U0NOBODY'
export const slackUsers = [
  { slackUserId: RITA, subject: 'rita', teams: ['payments'], roles: ['requester', 'approver'] },
  { slackUserId: AMOS, subject: 'amos', teams: ['payments'], roles: ['approver'] },
]

/** Every payments request needs one approval from a payments approver. */
export const governance = {
  teams: [{ name: 'payments', repositories: [{ pattern: 'payments/**' }] }],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
}

export function slackConfig(responseUrlOrigin: string, extra: Record<string, unknown> = {}) {
  return {
    slack: {
      signingSecret: SLACK_SECRET,
      responseUrlOrigins: [responseUrlOrigin],
      users: slackUsers,
      ...extra,
    },
  }
}

/** Signs a body exactly as Slack does: `v0=` + hex HMAC-SHA256 of `v0:<ts>:<body>`. */
export function sign(body: string, timestamp: string, secret = SLACK_SECRET): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`
}

export interface Signed {
  body: string
  timestamp?: string
  signature?: string
}

export function signed(
  fields: Record<string, string>,
  options: { timestamp?: number; secret?: string } = {},
) {
  const body = new URLSearchParams(fields).toString()
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000))
  return { body, timestamp, signature: sign(body, timestamp, options.secret) }
}

export function send(app: FastifyInstance, path: 'commands' | 'interactions', request: Signed) {
  return app.inject({
    method: 'POST',
    url: `/v1/chatops/slack/${path}`,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(request.timestamp ? { 'x-slack-request-timestamp': request.timestamp } : {}),
      ...(request.signature ? { 'x-slack-signature': request.signature } : {}),
    },
    payload: request.body,
  })
}

/** A slash command `/regent <text>` from a Slack user, signed. */
export function command(
  app: FastifyInstance,
  userId: string,
  text: string,
  responseUrl = 'https://hooks.slack.com/commands/T0/1/x',
) {
  return send(
    app,
    'commands',
    signed({
      token: 'legacy-verification-token-unused',
      team_id: 'T0TEAM',
      channel_id: 'C0CHAN',
      user_id: userId,
      user_name: userId.toLowerCase(),
      command: '/regent',
      text,
      response_url: responseUrl,
      trigger_id: `${Date.now()}.${Math.random()}`,
    }),
  )
}

/** A click on a button of a Regent message, signed. */
export function click(
  app: FastifyInstance,
  userId: string,
  action: { action_id: string; value: string },
  responseUrl: string,
) {
  const payload = {
    type: 'block_actions',
    user: { id: userId, username: userId.toLowerCase(), team_id: 'T0TEAM' },
    team: { id: 'T0TEAM' },
    channel: { id: 'C0CHAN' },
    response_url: responseUrl,
    trigger_id: `${Date.now()}.${Math.random()}`,
    actions: [{ type: 'button', block_id: 'b', action_ts: String(Date.now() / 1000), ...action }],
  }
  return send(app, 'interactions', signed({ payload: JSON.stringify(payload) }))
}

export interface AuditItem {
  action: string
  actorSubject: string
  channel: string
  outcome: string
  requestId: string | null
  deletionId: string | null
  details: Record<string, unknown>
}

export async function auditEvents(app: FastifyInstance): Promise<AuditItem[]> {
  const res = await app.inject({ url: '/v1/audit?limit=500', headers: admin })
  return res.json().items
}

/** Waits until the capture server has received `count` requests. */
export async function received(
  server: CaptureServer,
  count: number,
  timeoutMs = 10_000,
): Promise<CapturedRequest[]> {
  const deadline = Date.now() + timeoutMs
  while (server.requests.length < count) {
    if (Date.now() > deadline) throw new Error(`response_url got ${server.requests.length} of ${count} posts`)
    await sleep(50)
  }
  return server.requests
}

/** Every text in a Block Kit message, flattened, for matching. */
export function textOf(message: { text?: string; blocks?: unknown[] }): string {
  return `${message.text ?? ''}\n${JSON.stringify(message.blocks ?? [])}`
}

/** The actions block's buttons of a message. */
export function buttons(message: { blocks?: unknown[] }): { action_id: string; value: string }[] {
  const actions = (message.blocks ?? []).find((b) => (b as { type: string }).type === 'actions') as
    | { elements: { action_id: string; value: string }[] }
    | undefined
  return actions?.elements ?? []
}
