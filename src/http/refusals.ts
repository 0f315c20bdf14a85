import rateLimit from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import { Counter } from 'prom-client'
import type { FeatureOptions } from '../app-options.js'
import { auditActor, auditAlone } from '../audit/index.js'
import type { RequestContext } from '../auth/principal.js'
import { errors } from '../errors.js'
import { plural } from './format.js'
import { requestContext } from './request-context.js'

/**
 * The routes reachable without a token (Slack's request URLs, the registry events endpoint) never
 * write a row per request: an attacker sending unsigned requests would otherwise fill the
 * append-only audit log, which can never be cleaned, and hold its lock against real writes.
 * Refusals are counted in metrics at once, logged once per source per window, and written to the
 * audit log as one summary per source per window. The routes are rate limited per client address
 * (in memory, per replica) before any of their own work.
 */

export type PublicEndpoint = 'slack' | 'registry-events'

declare module 'fastify' {
  interface FastifyInstance {
    refusals: RefusalLedger
  }
}

/** Audit action of a summary, per endpoint. */
const SUMMARY_ACTION: Record<PublicEndpoint, string> = {
  slack: 'chatops.slack.refused',
  'registry-events': 'registry_events.refused',
}
const WHAT: Record<PublicEndpoint, string> = {
  slack: 'Slack request',
  'registry-events': 'registry event envelope',
}

/** Sources tracked per window; beyond it refusals are summed under `other`, so memory stays bounded. */
const MAX_SOURCES = 1000

interface Tally {
  endpoint: PublicEndpoint
  sourceIp: string
  count: number
  reasons: Record<string, number>
  /** The last request's context, for the summary's user agent and request id. */
  last: RequestContext
  firstAt: Date
  lastAt: Date
}

export interface RefusalLedgerOptions {
  pool: pg.Pool
  windowMs: number
  log: FastifyBaseLogger
  counter: Counter<'endpoint' | 'reason'>
}

export class RefusalLedger {
  readonly #tallies = new Map<string, Tally>()
  readonly #options: RefusalLedgerOptions
  #windowStart = new Date()
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> = Promise.resolve()

  constructor(options: RefusalLedgerOptions) {
    this.#options = options
  }

  /** A refused request: counted now, logged if it is its source's first in this window. */
  record(endpoint: PublicEndpoint, context: RequestContext, reason: string): void {
    this.#options.counter.inc({ endpoint, reason })
    const sourceIp = context.sourceIp ?? 'unknown'
    let key = `${endpoint} ${sourceIp}`
    let tally = this.#tallies.get(key)
    if (!tally && this.#tallies.size >= MAX_SOURCES) {
      key = `${endpoint} other`
      tally = this.#tallies.get(key)
    }
    const now = new Date()
    if (!tally) {
      tally = {
        endpoint,
        sourceIp: key.endsWith(' other') ? 'other' : sourceIp,
        count: 0,
        reasons: {},
        last: context,
        firstAt: now,
        lastAt: now,
      }
      this.#tallies.set(key, tally)
      this.#options.log.warn(
        { endpoint, sourceIp, reason, requestId: context.requestId },
        `${WHAT[endpoint]} refused; further refusals from this source are summarised every ${Math.round(this.#options.windowMs / 1000)} s`,
      )
    }
    tally.count++
    tally.reasons[reason] = (tally.reasons[reason] ?? 0) + 1
    tally.last = context
    tally.lastAt = now
  }

  start(): void {
    this.#timer = setInterval(() => {
      void this.flush()
    }, this.#options.windowMs)
    this.#timer.unref()
  }

  /** Writes one summary event per source seen since the last flush (at each window's end and at close). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write())
    return this.#flushing
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.flush()
  }

  async #write(): Promise<void> {
    const tallies = [...this.#tallies.values()]
    const windowStart = this.#windowStart
    this.#tallies.clear()
    this.#windowStart = new Date()
    for (const tally of tallies) {
      const minutes = Math.max(1, Math.round((tally.lastAt.getTime() - windowStart.getTime()) / 60_000))
      const summary = `${plural(tally.count, `refused ${WHAT[tally.endpoint]}`)} from ${tally.sourceIp} in the last ${plural(minutes, 'minute')}`
      this.#options.log.warn(
        { endpoint: tally.endpoint, sourceIp: tally.sourceIp, count: tally.count, reasons: tally.reasons },
        summary,
      )
      try {
        await auditAlone(
          this.#options.pool,
          // Nothing in an unverified request can be trusted, not even who it claims to come from.
          auditActor(
            {
              subject: 'unverified',
              teams: [],
              roles: [],
              channel: tally.endpoint === 'slack' ? 'slack' : 'system',
            },
            {
              ...tally.last,
              ...(tally.sourceIp === 'other' ? { sourceIp: 'other' } : {}),
            },
          ),
          {
            action: SUMMARY_ACTION[tally.endpoint],
            outcome: 'refused',
            details: {
              summary,
              count: tally.count,
              reasons: tally.reasons,
              firstAt: tally.firstAt.toISOString(),
              lastAt: tally.lastAt.toISOString(),
            },
          },
        )
      } catch (err) {
        // The counts stay in the metrics and the log; a summary is not worth retrying forever.
        this.#options.log.error({ err, endpoint: tally.endpoint }, 'refusal summary not audited')
      }
    }
  }

  /**
   * Route config for a public route: rate limited per client address, and every request over the
   * limit recorded as a refusal (429 with Retry-After).
   */
  rateLimit(endpoint: PublicEndpoint, limit: { max: number; windowMs: number }) {
    return {
      max: limit.max,
      timeWindow: limit.windowMs,
      onExceeded: (request: FastifyRequest) => this.record(endpoint, requestContext(request), 'rate-limited'),
    }
  }
}

export default fp<FeatureOptions>(
  async (app, { config }) => {
    const counter = new Counter({
      name: 'regent_unauthenticated_refusals_total',
      help: 'Requests to the routes reachable without a token that were refused, by endpoint and reason',
      labelNames: ['endpoint', 'reason'] as const,
      registers: [app.metrics],
    })
    const ledger = new RefusalLedger({
      pool: app.db,
      windowMs: config.publicRoutes.refusalSummaryMs,
      log: app.log,
      counter,
    })
    app.decorate('refusals', ledger)
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_request, context) =>
        new errors.RATE_LIMITED(Math.max(1, Math.ceil(context.ttl / 1000))),
    })
    app.addHook('onReady', async () => ledger.start())
    app.addHook('onClose', async () => ledger.stop())
  },
  { name: 'refusals', dependencies: ['db', 'metrics'] },
)
