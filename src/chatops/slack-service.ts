import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type pg from 'pg'
import { type Static, Type } from 'typebox'
import { type AuditInput, appendAuditEvent, auditActor } from '../audit/index.js'
import type { Principal, RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import type { DeletionService } from '../deletions/service.js'
import { errors, isRegentCode } from '../errors.js'
import { matchesTagPattern, tagPatternProblem } from '../governance/globs.js'
import { refuseBadInput } from '../http/input-guard.js'
import type { RefusalLedger } from '../http/refusals.js'
import { validated } from '../lib/validate.js'
import type { BrowseService } from '../registries/browse-service.js'
import {
  deletionMessage,
  dryRunMessage,
  ephemeral,
  errorMessage,
  helpMessage,
  parseButtonValue,
  registriesMessage,
  type SlackMessage,
  tagsMessage,
  unmappedMessage,
  usageMessage,
  workingMessage,
} from './blocks.js'
import { type Command, parseCommand, USAGE } from './commands.js'
import type { SlackConfig, SlackUser } from './config-schema.js'
import { SLACK_TIMESTAMP_TOLERANCE_SEC, verifySlackSignature } from './signature.js'
import type { SlackHttp } from './slack-http.js'
import { purgeSignatures, rememberSignature } from './sql.js'

export type SlackEndpoint = 'commands' | 'interactions'

/** The fields of a slash command Regent reads (https://api.slack.com/interactivity/slash-commands). */
export interface SlashCommand {
  user_id: string
  team_id?: string
  channel_id?: string
  text?: string
  response_url?: string
}

/**
 * The part of a `block_actions` payload Regent reads, checked like any request body: a signed
 * payload is Slack's, but its fields still must be what Regent can store and compare.
 */
const BlockActionsSchema = Type.Object({
  type: Type.String({ maxLength: 100 }),
  user: Type.Optional(
    Type.Object({
      id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      team_id: Type.Optional(Type.String({ maxLength: 64 })),
    }),
  ),
  team: Type.Optional(Type.Object({ id: Type.Optional(Type.String({ maxLength: 64 })) })),
  response_url: Type.Optional(Type.String({ maxLength: 2048 })),
  actions: Type.Optional(
    Type.Array(
      Type.Object({
        action_id: Type.Optional(Type.String({ maxLength: 255 })),
        value: Type.Optional(Type.String({ maxLength: 2000 })),
      }),
      { maxItems: 25 },
    ),
  ),
})
type BlockActions = Static<typeof BlockActionsSchema>

const PURGE_EVERY_MS = 60_000
/** Commands whose work never leaves the process: always answered at once. */
const INSTANT = new Set<Command['name']>(['help'])

/**
 * Slack as a thin adapter over the same services as REST: a verified request from a mapped Slack
 * user becomes a Principal with channel `slack`, so governance, self-approval refusal and audit
 * are exactly those of the REST API. This class owns what is Slack's own: signature and replay
 * checks, user mapping, the 3-second answer budget and Block Kit answers.
 */
export class SlackChatops {
  readonly #pending = new Set<Promise<unknown>>()
  #lastPurge = 0

  constructor(
    private readonly pool: pg.Pool,
    private readonly deletions: DeletionService,
    private readonly browse: BrowseService,
    private readonly config: SlackConfig & { signingSecret: string },
    private readonly http: SlackHttp,
    private readonly log: FastifyBaseLogger,
    private readonly refusals: Pick<RefusalLedger, 'record'>,
  ) {}

  /**
   * Verifies a request as Slack documents it, then refuses a replay of an accepted one. Refusals
   * are counted and audited as one summary per source and window (src/http/refusals.ts), never
   * with anything of the secret.
   */
  async verify(
    endpoint: SlackEndpoint,
    context: RequestContext,
    headers: { timestamp?: string; signature?: string },
    rawBody: string,
  ): Promise<void> {
    const verdict = verifySlackSignature(
      this.config.signingSecret,
      headers.timestamp,
      headers.signature,
      rawBody,
    )
    if (!verdict.ok) {
      this.refuse(endpoint, context, verdict.reason)
      throw verdict.reason === 'stale-timestamp'
        ? new errors.SLACK_TIMESTAMP_STALE()
        : new errors.SLACK_SIGNATURE_INVALID()
    }
    const signature = headers.signature!
    if (!(await rememberSignature(this.pool, signature))) {
      this.refuse(endpoint, context, 'replay')
      throw new errors.SLACK_REPLAY()
    }
    if (Date.now() - this.#lastPurge > PURGE_EVERY_MS) {
      this.#lastPurge = Date.now()
      // Twice the window: a signature is only useful to a replay while its timestamp is accepted.
      await purgeSignatures(this.pool, 2 * SLACK_TIMESTAMP_TOLERANCE_SEC)
    }
  }

  /** A verified slash command: the answer Slack shows (in time), the rest through response_url. */
  async command(context: RequestContext, form: SlashCommand): Promise<SlackMessage> {
    const parsed = parseCommand(form.text ?? '')
    const principal = await this.principalOf(form.user_id)
    const slack = {
      slackUserId: form.user_id,
      slackTeamId: form.team_id ?? null,
      slackChannelId: form.channel_id ?? null,
    }
    if (!principal) {
      await this.audit({
        ...slackActor(`slack:${form.user_id}`, context),
        action: 'chatops.slack.unmapped_user',
        outcome: 'refused',
        details: { ...slack, endpoint: 'commands', command: parsed.ok ? parsed.command.name : null },
      })
      return unmappedMessage(form.user_id)
    }
    await this.audit({
      ...auditActor(principal, context),
      action: 'chatops.slack.command',
      outcome: parsed.ok ? 'accepted' : 'usage',
      details: {
        ...slack,
        command: parsed.ok ? parsed.command.name : null,
        text: (form.text ?? '').slice(0, 500),
      },
    })
    if (!parsed.ok) return usageMessage(parsed.problem, parsed.usage)
    const { command } = parsed
    const work = this.run(principal, context, command)
    if (INSTANT.has(command.name)) return work
    return this.withinBudget(work, form.response_url, describe(command))
  }

  /** A verified interaction: Slack needs only a quick 200; the answer goes to response_url. */
  async interaction(context: RequestContext, payloadJson: string): Promise<void> {
    let parsed: unknown
    try {
      parsed = JSON.parse(payloadJson)
    } catch {
      throw new errors.VALIDATION('payload is not JSON')
    }
    refuseBadInput({ payload: parsed })
    const payload: BlockActions = validated(BlockActionsSchema, parsed, 'payload')
    if (payload.type !== 'block_actions') return
    const userId = payload.user?.id
    if (!userId) throw new errors.VALIDATION('payload.user.id is missing')
    const action = payload.actions?.[0]
    const responseUrl = payload.response_url
    const slack = { slackUserId: userId, slackTeamId: payload.team?.id ?? payload.user?.team_id ?? null }
    const principal = await this.principalOf(userId)
    if (!principal) {
      await this.audit({
        ...slackActor(`slack:${userId}`, context),
        action: 'chatops.slack.unmapped_user',
        outcome: 'refused',
        details: { ...slack, endpoint: 'interactions', action: action?.action_id ?? null },
      })
      await this.deliver(responseUrl, { ...unmappedMessage(userId), replace_original: false })
      return
    }
    await this.audit({
      ...auditActor(principal, context),
      action: 'chatops.slack.interaction',
      outcome: 'accepted',
      details: { ...slack, action: action?.action_id ?? null, value: action?.value ?? null },
    })
    const bound = action?.value ? parseButtonValue(action.value) : undefined
    if (!bound || (action?.action_id !== 'approve' && action?.action_id !== 'reject')) {
      await this.deliver(responseUrl, {
        ...ephemeral('Regent does not know this button.'),
        replace_original: false,
      })
      return
    }
    const decision = action.action_id
    const work = this.deletions
      .decide(principal, context, bound.id, { decision, planHash: bound.planHash })
      .then(
        // The decision replaces the message for everyone; the buttons stay only while approvals are missing.
        (view): SlackMessage => ({ ...deletionMessage(view, 'in_channel'), replace_original: true }),
        (err: unknown): SlackMessage => ({ ...this.failure(err, context), replace_original: false }),
      )
    const delivered = work.then((message) => this.deliver(responseUrl, message))
    this.track(delivered)
    await withinMs(delivered, this.config.replyBudgetMs)
  }

  /** Waits for deferred answers still being worked on (at close). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#pending])
  }

  private async run(principal: Principal, context: RequestContext, command: Command): Promise<SlackMessage> {
    try {
      switch (command.name) {
        case 'help':
          return helpMessage()
        case 'registries':
          return registriesMessage(await this.browse.listRegistries(principal))
        case 'tags':
          return await this.tags(principal, command)
        case 'delete': {
          const { name: _name, dryRun, ...input } = command
          if (dryRun) return dryRunMessage(await this.deletions.plan(principal, context, input))
          const { deletion } = await this.deletions.create(principal, context, input)
          // In the channel, so the approvers there see it and its buttons.
          return deletionMessage(deletion, 'in_channel')
        }
        case 'status': {
          // The light view first: only a request still awaiting approval shows its plan's items.
          const light = await this.deletions.get(principal, command.id, 'summary')
          const view =
            light.state === 'awaiting_approval' ? await this.deletions.get(principal, command.id) : light
          return deletionMessage(view, 'ephemeral')
        }
        case 'approve':
        case 'reject': {
          const view = await this.deletions.decide(principal, context, command.id, {
            decision: command.name,
            ...(command.name === 'reject' && command.comment ? { comment: command.comment } : {}),
          })
          return deletionMessage(view, 'in_channel')
        }
        case 'restore':
          return deletionMessage(await this.deletions.restore(principal, context, command.id), 'in_channel')
      }
    } catch (err) {
      return this.failure(err, context)
    }
  }

  private async tags(
    principal: Principal,
    command: Extract<Command, { name: 'tags' }>,
  ): Promise<SlackMessage> {
    if (command.pattern && tagPatternProblem(command.pattern))
      return usageMessage(
        `${command.pattern} is not a tag pattern: ${tagPatternProblem(command.pattern)}`,
        USAGE.tags,
      )
    const page = await this.browse.listTags(principal, command.registry, command.repository, { limit: 200 })
    const items = command.pattern
      ? page.items.filter((tag) => matchesTagPattern(command.pattern!, tag.name))
      : page.items
    return tagsMessage(command.registry, command.repository, items, {
      ...(command.pattern ? { pattern: command.pattern } : {}),
      incomplete: page.nextCursor !== null,
    })
  }

  /**
   * Slack shows only answers that arrive within 3 seconds. Work done within the budget is the
   * answer; otherwise Slack gets "working on it" now and the result goes to response_url when
   * ready. Without an allowed response_url there is nowhere to send a late answer, so the
   * command is answered in line however long it takes (Slack may then show a timeout).
   */
  private async withinBudget(
    work: Promise<SlackMessage>,
    responseUrl: string | undefined,
    what: string,
  ): Promise<SlackMessage> {
    if (!this.http.allowedResponseUrl(responseUrl)) {
      if (responseUrl)
        this.log.warn('slack response_url not in chatops.slack.responseUrlOrigins; answering in line')
      return work
    }
    const inTime = await withinMs(work, this.config.replyBudgetMs)
    if (inTime) return inTime
    this.track(work.then((message) => this.deliver(responseUrl, { ...message, replace_original: false })))
    return workingMessage(what)
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch((err) => this.log.error({ err }, 'slack deferred answer failed'))
    this.#pending.add(tracked)
    void tracked.finally(() => this.#pending.delete(tracked))
  }

  private async deliver(responseUrl: string | undefined, message: SlackMessage): Promise<boolean> {
    if (!responseUrl) return false
    return this.http.postResponse(responseUrl, message)
  }

  /**
   * A refusal or failure as a chat answer, like the REST error handler: catalogued errors by code
   * and message (their messages are built from safe parts), anything else without internals.
   */
  private failure(err: unknown, context: RequestContext): SlackMessage {
    const e = err as { code?: string; statusCode?: number; message?: string }
    if ((e.statusCode ?? 500) >= 500) this.log.error({ err }, 'slack command failed')
    if (isRegentCode(e.code) && e.code !== 'REGENT_INTERNAL') return errorMessage(e.code, e.message ?? e.code)
    return errorMessage(
      'REGENT_INTERNAL',
      `Regent could not do that (request ${context.requestId}); the error is logged.`,
    )
  }

  /** The configured user for a Slack member: by id, else by the profile e-mail Slack reports. */
  private async principalOf(slackUserId: string): Promise<Principal | undefined> {
    let user: SlackUser | undefined = this.config.users.find((u) => u.slackUserId === slackUserId)
    if (!user && this.config.users.some((u) => u.email && !u.slackUserId)) {
      const email = await this.http.emailOf(slackUserId)
      if (email) user = this.config.users.find((u) => !u.slackUserId && u.email?.toLowerCase() === email)
    }
    if (!user) return undefined
    return { subject: user.subject, teams: [...user.teams], roles: [...user.roles], channel: 'slack' }
  }

  /** Counted and summarised, never written per request: anyone can send unsigned requests. */
  private refuse(
    endpoint: SlackEndpoint,
    context: RequestContext,
    reason: 'stale-timestamp' | 'bad-signature' | 'replay',
  ): void {
    this.refusals.record('slack', context, `${endpoint}: ${reason}`)
  }

  private async audit(input: AuditInput): Promise<void> {
    await withTransaction(this.pool, (client) => appendAuditEvent(client, input))
  }
}

/** The promise's value if it settles within `ms`, else undefined; the timer never outlives it. */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const timer = new AbortController()
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined),
    ])
  } finally {
    timer.abort()
  }
}

function slackActor(subject: string, context: RequestContext) {
  return auditActor({ subject, teams: [], roles: [], channel: 'slack' }, context)
}

function describe(command: Command): string {
  switch (command.name) {
    case 'delete':
      return command.dryRun ? 'planning the deletion' : 'planning and filing the deletion'
    case 'tags':
      return `listing ${command.registry}/${command.repository}`
    default:
      return command.name
  }
}
