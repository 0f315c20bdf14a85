import type { FastifyBaseLogger } from 'fastify'
import { Agent, request } from 'undici'
import type { SlackMessage } from './blocks.js'
import type { SlackConfig } from './config-schema.js'

/**
 * Regent's outbound calls to Slack: answers posted to a request's `response_url`, and `users.info`
 * for e-mail mapping. One Agent with connect, header and body timeouts; undici follows no
 * redirects, so an allowed origin cannot bounce a post somewhere else.
 */
export class SlackHttp {
  readonly #agent: Agent
  readonly #origins: Set<string>
  readonly #emails = new Map<string, { email: string | undefined; until: number }>()

  constructor(
    private readonly config: SlackConfig,
    private readonly log: FastifyBaseLogger,
  ) {
    const timeout = config.outboundTimeoutMs
    this.#agent = new Agent({ connect: { timeout }, headersTimeout: timeout, bodyTimeout: timeout })
    this.#origins = new Set(config.responseUrlOrigins.map((o) => new URL(o).origin))
  }

  /**
   * `response_url` comes from the request body: Slack signed it, but only origins in
   * `chatops.slack.responseUrlOrigins` are posted to, so a leaked signing secret cannot turn Regent
   * into a proxy into the internal network (SSRF).
   */
  allowedResponseUrl(url: string | undefined): url is string {
    if (!url) return false
    try {
      const parsed = new URL(url)
      return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && this.#origins.has(parsed.origin)
    } catch {
      return false
    }
  }

  /** Posts a message to a response_url; false when refused or failed (logged without the URL's path, which is a credential). */
  async postResponse(url: string, message: SlackMessage): Promise<boolean> {
    if (!this.allowedResponseUrl(url)) {
      this.log.warn({ origin: safeOrigin(url) }, 'slack response_url origin not allowed; answer dropped')
      return false
    }
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
      })
      await res.body.dump()
      if (res.statusCode >= 300) {
        this.log.warn(
          { origin: safeOrigin(url), status: res.statusCode },
          'slack response_url refused the answer',
        )
        return false
      }
      return true
    } catch (err) {
      this.log.warn(
        { origin: safeOrigin(url), err: (err as Error).message },
        'posting to slack response_url failed',
      )
      return false
    }
  }

  /** The profile e-mail of a Slack user (`users.info`, scope users:read.email), cached for userCacheMs. */
  async emailOf(slackUserId: string): Promise<string | undefined> {
    const token = this.config.botToken
    if (!token) return undefined
    const cached = this.#emails.get(slackUserId)
    if (cached && cached.until > Date.now()) return cached.email
    let email: string | undefined
    try {
      const url = `${this.config.apiUrl.replace(/\/$/, '')}/users.info?${new URLSearchParams({ user: slackUserId })}`
      const res = await request(url, {
        method: 'GET',
        dispatcher: this.#agent,
        headers: { authorization: `Bearer ${token}` },
      })
      const body = (await res.body.json().catch(() => undefined)) as
        | { ok?: boolean; error?: string; user?: { profile?: { email?: unknown } } }
        | undefined
      if (res.statusCode === 200 && body?.ok && typeof body.user?.profile?.email === 'string') {
        email = body.user.profile.email.toLowerCase()
      } else {
        this.log.warn({ status: res.statusCode, error: body?.error }, 'slack users.info gave no e-mail')
      }
    } catch (err) {
      // Not cached: a Slack outage must not make a mapped user look unmapped for minutes.
      this.log.warn({ err: (err as Error).message }, 'slack users.info failed')
      return undefined
    }
    this.#emails.set(slackUserId, { email, until: Date.now() + this.config.userCacheMs })
    return email
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return '(not a URL)'
  }
}
