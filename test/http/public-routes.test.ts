import type { FastifyInstance, InjectOptions } from 'fastify'
import { pino } from 'pino'
import t from 'tap'
import { RITA, signed, slackConfig } from '../chatops/support.js'
import { build } from '../helper.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { logSink } from '../helpers/log-sink.js'
import {
  EVENTS_MEDIA_TYPE,
  eventRegistries,
  manifestEvent,
  SECRET,
  SECRET_ENV,
} from '../registry-events/support.js'

/**
 * The routes anyone can reach without a token write nothing per request: a flood of unsigned
 * Slack requests and of event envelopes with a wrong secret leaves one audit summary per source,
 * is rate limited with 429 and Retry-After, and real Slack and a real registry still get through.
 */

const ATTACKER_SLACK = '203.0.113.9'
const ATTACKER_EVENTS = '203.0.113.10'
const SLACK = '198.51.100.7'
const REGISTRY = '198.51.100.8'
const FLOOD = 300
const LIMIT = 100

const auditRows = async (app: FastifyInstance) =>
  Number((await app.db.query<{ n: string }>('SELECT count(*) AS n FROM audit_events')).rows[0]!.n)

const slackCommand = (
  remoteAddress: string,
  fields: Record<string, string>,
  sign: boolean,
): InjectOptions => {
  const request = signed(fields)
  return {
    method: 'POST',
    url: '/v1/chatops/slack/commands',
    remoteAddress,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': `flood/${'x'.repeat(5000)}`,
      'x-slack-request-timestamp': request.timestamp,
      ...(sign ? { 'x-slack-signature': request.signature } : {}),
    },
    payload: request.body,
  }
}

const envelope = (remoteAddress: string, secret: string): InjectOptions => ({
  method: 'POST',
  url: '/v1/registries/hub/events',
  remoteAddress,
  headers: { 'content-type': EVENTS_MEDIA_TYPE, 'x-regent-event-secret': secret },
  payload: JSON.stringify({ events: [manifestEvent({ tag: 'v1', timestamp: '2026-03-01T10:00:00Z' })] }),
})

t.test(
  '300 unsigned Slack requests and 300 wrongly authenticated envelopes add a handful of audit rows',
  async (t) => {
    const capture = await startCaptureServer()
    t.teardown(capture.stop)
    const { lines, sink } = logSink()
    const app = await build(t, {
      loggerInstance: pino({ level: 'warn' }, sink),
      env: { [SECRET_ENV]: SECRET },
      config: {
        chatops: slackConfig(capture.url),
        registries: eventRegistries(),
        publicRoutes: { rateLimit: { max: LIMIT, windowMs: 60_000 } },
      },
    })
    const before = await auditRows(app)

    const help = { team_id: 'T0TEAM', user_id: RITA, command: '/regent', text: 'help', response_url: '' }
    const slackAnswers = []
    const eventAnswers = []
    for (let i = 0; i < FLOOD; i++) {
      slackAnswers.push(await app.inject(slackCommand(ATTACKER_SLACK, { ...help, text: `help ${i}` }, false)))
      eventAnswers.push(await app.inject(envelope(ATTACKER_EVENTS, 'not-the-secret')))
    }
    const statuses = (answers: { statusCode: number }[]) => {
      const counts: Record<number, number> = {}
      for (const a of answers) counts[a.statusCode] = (counts[a.statusCode] ?? 0) + 1
      return counts
    }
    t.same(statuses(slackAnswers), { 401: LIMIT, 429: FLOOD - LIMIT }, 'Slack: refused, then rate limited')
    t.same(statuses(eventAnswers), { 401: LIMIT, 429: FLOOD - LIMIT }, 'events: refused, then rate limited')
    for (const limited of [slackAnswers.at(-1)!, eventAnswers.at(-1)!]) {
      t.equal(limited.json().error.code, 'REGENT_RATE_LIMITED')
      t.ok(Number(limited.headers['retry-after']) > 0, `Retry-After: ${limited.headers['retry-after']}`)
    }
    t.equal(await auditRows(app), before, 'nothing was written while the requests came in')

    // Legitimate callers, from their own addresses, still get through.
    const real = await app.inject(slackCommand(SLACK, help, true))
    t.equal(real.statusCode, 200, 'a signed Slack command works')
    const registry = await app.inject(envelope(REGISTRY, SECRET))
    t.equal(registry.statusCode, 200, 'an envelope with the right secret works')
    t.same(registry.json(), { accepted: 1, duplicates: 0, ignored: 0 })

    await app.refusals.flush()
    const { rows } = await app.db.query<{
      action: string
      source_ip: string
      user_agent: string
      details: Record<string, unknown>
    }>(
      `SELECT action, source_ip, user_agent, details FROM audit_events WHERE outcome = 'refused' ORDER BY seq`,
    )
    t.equal(rows.length, 2, 'one summary per source')
    t.ok(
      (await auditRows(app)) - before <= 4,
      'a handful of rows in all (the summaries and the real command)',
    )
    const slack = rows.find((r) => r.action === 'chatops.slack.refused')
    t.match(slack, {
      source_ip: ATTACKER_SLACK,
      details: {
        count: FLOOD,
        reasons: { 'commands: bad-signature': LIMIT, 'rate-limited': FLOOD - LIMIT },
        summary: `${FLOOD} refused Slack requests from ${ATTACKER_SLACK} in the last 1 minute`,
      },
    })
    t.ok((slack?.user_agent.length ?? 0) <= 256, 'the stored User-Agent is cut to 256 characters')
    t.match(
      rows.find((r) => r.action === 'registry_events.refused'),
      {
        source_ip: ATTACKER_EVENTS,
        details: { count: FLOOD, reasons: { 'hub: secret wrong': LIMIT, 'rate-limited': FLOOD - LIMIT } },
      },
    )

    const metrics = (await app.inject({ url: '/metrics' })).body
    const counted = [...metrics.matchAll(/^regent_unauthenticated_refusals_total\{[^}]*\} (\d+)$/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    )
    t.equal(counted, 2 * FLOOD, 'every refusal is counted in the metrics')
    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40)
    t.ok(warnings.length <= 4, `${warnings.length} warnings logged for ${2 * FLOOD} refusals`)
  },
)
