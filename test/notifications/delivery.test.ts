import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Ajv } from 'ajv'
import t, { type Test } from 'tap'
import { withTransaction } from '../../src/db/transaction.js'
import type { NotificationEvent } from '../../src/notifications/index.js'
import { webhookProblems } from '../../src/notifications/index.js'
import { admin, fastJobs } from '../deletions/support.js'
import { authHeaders, build } from '../helper.js'
import { type CaptureServer, startCaptureServer } from '../helpers/capture-server.js'
import { deliveries, emit, signatureProblem, waitForDeliveries } from './support.js'

const SECRET = 'whsec-test-0123456789'

const event: NotificationEvent = {
  type: 'deletion.approved',
  subject: '6f1c2a52-4a55-4c55-9a1f-0d2a3c4b5e6f',
  registry: 'local',
  teams: ['payments'],
  summary: 'Deletion 6f1c2a52 (untag in local) is queued: 1 item(s) <&> requested by paula',
  data: { deletionId: '6f1c2a52-4a55-4c55-9a1f-0d2a3c4b5e6f', items: 1 },
}

async function setup(
  t: Test,
  webhooks: object[],
  options: { maxAttempts?: number; receiver?: CaptureServer } = {},
) {
  const receiver = options.receiver ?? (await startCaptureServer({ status: 200 }))
  t.teardown(receiver.stop)
  const app = await build(t, {
    env: { HOOK_SECRET: SECRET },
    config: {
      worker: true,
      jobs: fastJobs,
      notifications: {
        maxAttempts: options.maxAttempts ?? 3,
        timeoutMs: 2000,
        webhooks: webhooks.map((w) => ({ url: `${receiver.url}/hook`, ...w })),
      },
    },
  })
  return { app, receiver }
}

/** Answers the given statuses in turn, then the last one for ever. */
function answers(...statuses: number[]) {
  let n = 0
  return () => ({ status: statuses[Math.min(n++, statuses.length - 1)] ?? 200 })
}

t.test(
  'a receiver failing twice then succeeding gets exactly one successful delivery, signed, after 3 attempts',
  async (t) => {
    const receiver = await startCaptureServer(answers(500, 500, 200))
    const { app } = await setup(t, [{ name: 'ops', format: 'json', secretEnv: 'HOOK_SECRET' }], {
      receiver,
    })
    t.equal(await emit(app, event), 1, 'one delivery for the one matching webhook')
    const [delivery] = await waitForDeliveries(app, admin, '', (items) => items[0]?.state === 'delivered')
    t.equal(delivery!.attempts, 3)
    t.equal(delivery!.lastStatus, 200)
    t.equal(delivery!.lastError, null)

    // Nothing more arrives later: a delivered one is never sent again.
    await sleep(1000)
    t.equal(receiver.requests.length, 3, 'three requests: two refused, one accepted')
    const last = receiver.requests[2]!
    t.equal(signatureProblem(last, SECRET), undefined, 'the accepted request is genuinely signed')
    t.equal(signatureProblem(last, 'another-secret'), 'signature mismatch', 'a wrong secret does not verify')
    t.equal(
      signatureProblem({ ...last, body: last.body.replace('paula', 'mallory') }, SECRET),
      'signature mismatch',
      'a changed body does not verify',
    )
    const signedAt = Number(/t=(\d+)/.exec(String(last.headers['x-regent-signature']))![1])
    t.equal(
      signatureProblem(last, SECRET, signedAt + 301),
      'timestamp outside the 5-minute tolerance',
      'an old signature is refused (replay)',
    )
    t.same(
      new Set(receiver.requests.map((r) => r.body)),
      new Set([last.body]),
      'every attempt sends the same bytes',
    )
    t.equal(last.method, 'POST')
    t.equal(last.url, '/hook')
    t.equal(last.headers['content-type'], 'application/json')
    t.equal(last.headers['user-agent'], 'regent')
    t.equal(last.headers['x-regent-delivery'], delivery!.id)
    t.equal(last.headers['x-regent-event'], 'deletion.approved')
    const body = JSON.parse(last.body)
    t.same(Object.keys(body).sort(), [
      'data',
      'id',
      'registry',
      'subject',
      'summary',
      'teams',
      'time',
      'type',
    ])
    t.match(body, {
      id: delivery!.id,
      type: 'deletion.approved',
      subject: event.subject,
      registry: 'local',
      teams: ['payments'],
      summary: event.summary,
      data: event.data,
    })
    t.ok(!Number.isNaN(Date.parse(body.time)))

    const job = (await app.inject({ url: `/v1/jobs/${delivery!.jobId}`, headers: admin })).json()
    t.equal(job.state, 'succeeded')
    t.equal(job.attempts, 3, 'the queue retried twice')

    // The handler run again for it (a crash after the POST, say) sends nothing.
    const deliver = app.jobs.handlers()['notification.deliver']!
    const again = await deliver(
      { id: delivery!.jobId, payload: { deliveryId: delivery!.id } } as never,
      { signal: new AbortController().signal } as never,
    )
    t.same(again, { skipped: 'delivered' })
    t.equal(receiver.requests.length, 3, 'no fourth request')
  },
)

t.test('a receiver that always fails ends as a visible failed delivery with its last status', async (t) => {
  const { app, receiver } = await setup(t, [{ name: 'ops', format: 'json', secretEnv: 'HOOK_SECRET' }], {
    receiver: await startCaptureServer({ status: 503, body: 'down for maintenance' }),
  })
  await emit(app, event)
  const [failed] = await waitForDeliveries(app, admin, '?state=failed', (items) => items.length === 1)
  t.equal(failed!.attempts, 3, 'maxAttempts attempts were made')
  t.equal(failed!.lastStatus, 503)
  t.match(failed!.lastError, /503/)
  t.equal(receiver.requests.length, 3)
  t.same(await deliveries(app, admin, '?state=delivered'), [])
  const one = await app.inject({ url: `/v1/notifications/deliveries/${failed!.id}`, headers: admin })
  t.equal(one.statusCode, 200)
  t.equal(one.json().state, 'failed')
  t.ok(one.json().failedAt)

  // Not admins: refused, and the refusal of a redelivery is audited.
  const viewer = authHeaders({ sub: 'vera', roles: ['viewer', 'approver'], groups: ['payments'] })
  t.equal((await app.inject({ url: '/v1/notifications/deliveries', headers: viewer })).statusCode, 403)
  const refused = await app.inject({
    method: 'POST',
    url: `/v1/notifications/deliveries/${failed!.id}/redeliver`,
    headers: viewer,
  })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().error.code, 'REGENT_FORBIDDEN')

  // An admin redelivers it once the receiver is back: delivered, audited.
  receiver.respond({ status: 204, body: '' })
  const again = await app.inject({
    method: 'POST',
    url: `/v1/notifications/deliveries/${failed!.id}/redeliver`,
    headers: admin,
  })
  t.equal(again.statusCode, 202)
  t.equal(again.json().state, 'pending')
  t.not(again.json().jobId, failed!.jobId, 'a new job sends it')
  const [delivered] = await waitForDeliveries(app, admin, '', (items) => items[0]?.state === 'delivered')
  t.equal(delivered!.attempts, 4)
  t.equal(delivered!.lastStatus, 204)
  t.equal(receiver.requests.length, 4)
  t.equal(signatureProblem(receiver.requests[3]!, SECRET), undefined)

  const twice = await app.inject({
    method: 'POST',
    url: `/v1/notifications/deliveries/${failed!.id}/redeliver`,
    headers: admin,
  })
  t.equal(twice.statusCode, 409, 'a delivered one cannot be redelivered')
  t.equal(twice.json().error.code, 'REGENT_DELIVERY_NOT_REDELIVERABLE')

  const audit = (
    await app.inject({ url: '/v1/audit?action=notification.redelivered', headers: admin })
  ).json()
  const actions = audit.items.map((e: { action: string }) => e.action)
  t.ok(actions.includes('notification.redelivered'), 'the redelivery is audited')
  const all = (await app.inject({ url: '/v1/audit', headers: admin })).json()
  t.ok(
    all.items.some((e: { action: string }) => e.action === 'notification.redeliver_refused'),
    'the refused redelivery is audited',
  )
})

t.test('a network error is retried and recorded without a status', async (t) => {
  const dead = await startCaptureServer()
  const url = `${dead.url}/hook`
  await dead.stop()
  const { app } = await setup(t, [{ name: 'gone', format: 'json', secretEnv: 'HOOK_SECRET', url }], {
    maxAttempts: 2,
  })
  await emit(app, event)
  const [failed] = await waitForDeliveries(app, admin, '?state=failed', (items) => items.length === 1)
  t.equal(failed!.attempts, 2)
  t.equal(failed!.lastStatus, null)
  t.match(failed!.lastError, /ECONNREFUSED|connect/i)
})

t.test('a rolled-back transaction emits nothing', async (t) => {
  const { app, receiver } = await setup(t, [{ name: 'ops', format: 'json', secretEnv: 'HOOK_SECRET' }])
  await t.rejects(
    withTransaction(app.db, async (client) => {
      t.equal(await app.notifier.notify(client, event), 1, 'the delivery was written inside the transaction')
      throw new Error('the state change failed')
    }),
    /the state change failed/,
  )
  await sleep(700)
  t.same(await deliveries(app, admin), [], 'no delivery exists')
  const jobs = await app.db.query("SELECT count(*)::int AS n FROM jobs WHERE kind = 'notification.deliver'")
  t.equal(jobs.rows[0].n, 0, 'and no job')
  t.equal(receiver.requests.length, 0, 'nothing was sent')
})

t.test('a cloudevents delivery validates against the CloudEvents 1.0 JSON schema', async (t) => {
  const { app, receiver } = await setup(t, [
    { name: 'events', format: 'cloudevents', secretEnv: 'HOOK_SECRET' },
  ])
  await emit(app, event)
  const [delivery] = await waitForDeliveries(app, admin, '', (items) => items[0]?.state === 'delivered')
  const req = receiver.requests[0]!
  t.equal(req.headers['content-type'], 'application/cloudevents+json')
  t.equal(signatureProblem(req, SECRET), undefined, 'signed like the other formats')

  const validate = cloudEventsValidator()
  const body = JSON.parse(req.body)
  t.ok(validate(body), `valid CloudEvent: ${JSON.stringify(validate.errors)}`)
  t.match(body, {
    specversion: '1.0',
    id: delivery!.id,
    source: '/regent',
    type: 'io.regent.deletion.approved',
    subject: event.subject,
    datacontenttype: 'application/json',
    data: { deletionId: event.subject, summary: event.summary, registry: 'local', teams: ['payments'] },
  })
  t.match(body.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'RFC 3339 time')
  // The validator is not vacuous: a CloudEvent without its source, or with a bad time, fails.
  const { source: _source, ...noSource } = body
  t.notOk(validate(noSource), 'missing source is invalid')
  t.notOk(validate({ ...body, time: 'yesterday' }), 'a time that is not RFC 3339 is invalid')
})

t.test('a slack delivery is an incoming-webhook message; unsigned without a secret', async (t) => {
  const { app, receiver } = await setup(t, [{ name: 'chat', format: 'slack' }])
  await emit(app, event)
  await waitForDeliveries(app, admin, '', (items) => items[0]?.state === 'delivered')
  const req = receiver.requests[0]!
  t.equal(req.headers['x-regent-signature'], undefined)
  const body = JSON.parse(req.body)
  t.equal(body.text, event.summary, 'the text is the summary as it is')
  t.equal(body.blocks[0].type, 'section')
  t.equal(body.blocks[0].text.text, event.summary.replace('<&>', '&lt;&amp;&gt;'), 'mrkdwn is escaped')
  t.equal(body.blocks[1].type, 'context')
  t.match(body.blocks[1].elements[0].text, /deletion\.approved.*local.*6f1c2a52/)
})

t.test('list filters and cursor pagination', async (t) => {
  const { app } = await setup(t, [
    { name: 'a', format: 'json', secretEnv: 'HOOK_SECRET' },
    { name: 'b', format: 'slack', events: ['gc.*'] },
  ])
  for (let i = 0; i < 3; i++) await emit(app, { ...event, subject: `deletion-${i}` })
  await emit(app, { type: 'gc.failed', subject: 'run-1', registry: 'local', summary: 'GC failed', data: {} })
  await waitForDeliveries(
    app,
    admin,
    '',
    (items) => items.length === 5 && items.every((i) => i.state !== 'pending'),
  )
  t.same(
    (await deliveries(app, admin, '?webhook=b')).map((d) => d.type),
    ['gc.failed'],
  )
  t.same(
    (await deliveries(app, admin, '?type=deletion.approved')).map((d) => d.subject),
    ['deletion-2', 'deletion-1', 'deletion-0'],
  )
  const seen: string[] = []
  let cursor = ''
  for (let page = 0; page < 5; page++) {
    const res = await app.inject({
      url: `/v1/notifications/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      headers: admin,
    })
    const body = res.json()
    seen.push(...body.items.map((d: { id: string }) => d.id))
    if (!body.nextCursor) break
    cursor = body.nextCursor
  }
  t.equal(seen.length, 5, 'every delivery once across pages')
  t.equal(new Set(seen).size, 5)
  const bad = await app.inject({ url: '/v1/notifications/deliveries?cursor=nope', headers: admin })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'REGENT_INVALID_CURSOR')
  const missing = await app.inject({
    url: '/v1/notifications/deliveries/00000000-0000-4000-8000-000000000000',
    headers: admin,
  })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error.code, 'REGENT_DELIVERY_NOT_FOUND')

  const gql = await app.inject({
    method: 'POST',
    url: '/graphql',
    headers: admin,
    payload: {
      query:
        '{ notificationDeliveries(webhook: "b") { nodes { type subject state data } pageInfo { hasNextPage } } }',
    },
  })
  t.same(gql.json().data.notificationDeliveries, {
    nodes: [{ type: 'gc.failed', subject: 'run-1', state: 'delivered', data: '{}' }],
    pageInfo: { hasNextPage: false },
  })
})

t.test('webhook config problems the schema cannot see are each named', async (t) => {
  const problems = webhookProblems(
    [
      { name: 'a', url: 'http://x', events: ['*'], format: 'json' },
      { name: 'a', url: 'http://x', events: ['deletion.*', 'deletion.aproved'], format: 'slack' },
      { name: 'c', url: 'http://x', events: ['gc.*'], format: 'cloudevents', secretEnv: 'UNSET_SECRET' },
    ],
    {},
  )
  t.same(problems, [
    'notifications.webhooks[0].secretEnv: required for the json format (deliveries are signed)',
    'notifications.webhooks[1].name: a is used twice',
    'notifications.webhooks[1].events: deletion.aproved matches no event type',
    'notifications.webhooks[2].secretEnv: the environment variable UNSET_SECRET is not set',
  ])
})

/** The CloudEvents spec's JSON schema, with checkers for the three formats it uses. */
function cloudEventsValidator() {
  const schema = JSON.parse(readFileSync(new URL('./cloudevents.schema.json', import.meta.url), 'utf8'))
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true })
  // RFC 3339 date-time (what the spec's `time` must be).
  ajv.addFormat(
    'date-time',
    (value: string) =>
      /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(value) &&
      !Number.isNaN(Date.parse(value)),
  )
  // RFC 3986 absolute URI, and URI-reference (relative allowed): no spaces or disallowed characters.
  ajv.addFormat('uri', (value: string) => /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"{}|\\^`]*$/.test(value))
  ajv.addFormat('uri-reference', (value: string) => /^[^\s<>"{}|\\^`]*$/.test(value))
  return ajv.compile(schema)
}
