import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { fastJobs, waitForState } from '../deletions/support.js'
import { authHeaders, build } from '../helper.js'
import { type CapturedRequest, startCaptureServer } from '../helpers/capture-server.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { deliveries, signatureProblem, waitForDeliveries } from './support.js'

const SECRET = 'flow-secret-abcdef'

const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
    { name: 'search', repositories: [{ pattern: 'search/**' }] },
  ],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
}

const alice = authHeaders({ sub: 'alice', groups: ['search'], roles: ['requester'] })
const sam = authHeaders({ sub: 'sam', groups: ['search'], roles: ['approver'] })
const paula = authHeaders({ sub: 'paula', groups: ['payments'], roles: ['requester'] })
const admin = authHeaders({ sub: 'root', roles: ['admin'] })

/** Four subscriptions with different filters, each to its own path of one receiver. */
const webhooks = [
  { name: 'everything', events: ['*'] },
  { name: 'search-deletions', events: ['deletion.*'], teams: ['search'] },
  { name: 'payments-requests', events: ['deletion.requested'], teams: ['payments'] },
  { name: 'gc', events: ['gc.*'], format: 'slack' },
]

async function setup(t: Test, gc?: Record<string, unknown>, options: { proxy?: boolean } = {}) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const proxy = options.proxy ? await startFaultProxy(registry.url) : undefined
  if (proxy) t.teardown(proxy.stop)
  const receiver = await startCaptureServer({ status: 200 })
  t.teardown(receiver.stop)
  const app = await build(t, {
    env: { FLOW_SECRET: SECRET },
    config: {
      registries: [
        { ...registryConfig(proxy ?? registry, { name: 'local', retries: 0 }), ...(gc ? { gc } : {}) },
      ],
      deletions: { maxAttempts: 2 },
      governance,
      worker: true,
      jobs: fastJobs,
      notifications: {
        webhooks: webhooks.map((w) => ({
          format: 'json',
          secretEnv: 'FLOW_SECRET',
          url: `${receiver.url}/${w.name}`,
          ...w,
        })),
      },
    },
  })
  return { app, client, receiver, proxy }
}

async function createDeletion(app: FastifyInstance, headers: Record<string, string>, body: object) {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers,
    payload: { registry: 'local', reason: 'cleanup', ...body },
  })
  if (res.statusCode !== 201) throw new Error(`deletion not created: ${res.statusCode} ${res.body}`)
  return res.json() as { id: string; state: string; summary: string }
}

/**
 * The event types each webhook received, sorted: deliveries run concurrently, so two events
 * emitted in one transaction (requested and approved by the rules) may arrive in either order.
 */
function received(requests: CapturedRequest[]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const req of requests) {
    const name = req.url.slice(1)
    out[name] = [...(out[name] ?? []), String(req.headers['x-regent-event'])].sort()
  }
  return out
}

/** Waits until no delivery is pending, so what arrived is all that will arrive. */
const settled = (app: FastifyInstance) =>
  waitForDeliveries(app, admin, '', (items) => items.every((i) => i.state !== 'pending'))

t.test(
  'a request needing approval notifies the approvers, then approval and execution, to matching webhooks only',
  async (t) => {
    const { app, client, receiver } = await setup(t)
    await pushImage(client, 'search/api', { tags: ['v1'] })
    await pushImage(client, 'search/api', { tags: ['v2'] })

    const request = await createDeletion(app, alice, {
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'v1' }],
    })
    t.equal(request.state, 'awaiting_approval')
    const [requested] = await waitForDeliveries(app, admin, '?webhook=everything', (items) =>
      items.some((i) => i.state === 'delivered'),
    )
    t.equal(requested!.type, 'deletion.requested')
    t.equal(requested!.subject, request.id)
    t.equal(requested!.summary, request.summary, 'the summary is the one the API answers')
    t.same(requested!.teams, ['search'])
    t.match(requested!.data, {
      deletionId: request.id,
      state: 'awaiting_approval',
      owningTeams: ['search'],
      approvals: { required: { count: 1 }, missing: 1 },
      requester: { person: 'alice' },
      items: 1,
    })

    const approve = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/approvals`,
      headers: sam,
      payload: { decision: 'approve' },
    })
    t.equal(approve.statusCode, 200, approve.body)
    await waitForState(app, request.id)
    await settled(app)

    t.same(received(receiver.requests), {
      everything: ['deletion.approved', 'deletion.executed', 'deletion.requested'],
      'search-deletions': ['deletion.approved', 'deletion.executed', 'deletion.requested'],
    })
    for (const req of receiver.requests)
      t.equal(signatureProblem(req, SECRET), undefined, `${req.url} signed`)
    const executed = (await deliveries(app, admin, '?type=deletion.executed&webhook=everything'))[0]!
    t.match(executed.data, { state: 'succeeded', progress: { deleted: 1, failed: 0 } })
    t.match(executed.summary, /is succeeded/)

    // Restoring it is announced too.
    const restore = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/restore`,
      headers: admin,
    })
    t.equal(restore.statusCode, 200, restore.body)
    await settled(app)
    t.same(received(receiver.requests).everything, [
      'deletion.approved',
      'deletion.executed',
      'deletion.requested',
      'deletion.restored',
    ])
  },
)

t.test('a rejection is announced; a refused self-approval is not', async (t) => {
  const { app, client, receiver } = await setup(t)
  await pushImage(client, 'search/api', { tags: ['old'] })
  const request = await createDeletion(app, alice, {
    verb: 'untag',
    targets: [{ repository: 'search/api', tag: 'old' }],
  })
  const self = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${request.id}/approvals`,
    headers: authHeaders({ sub: 'alice', groups: ['search'], roles: ['approver', 'requester'] }),
    payload: { decision: 'approve' },
  })
  t.equal(self.statusCode, 403)
  const reject = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${request.id}/approvals`,
    headers: sam,
    payload: { decision: 'reject', comment: 'still used' },
  })
  t.equal(reject.statusCode, 200)
  await settled(app)
  t.same(received(receiver.requests), {
    everything: ['deletion.rejected', 'deletion.requested'],
    'search-deletions': ['deletion.rejected', 'deletion.requested'],
  })
})

t.test(
  "a request that needs no approval announces request, approval and execution; team filters see only their team's",
  async (t) => {
    const { app, client, receiver } = await setup(t)
    await pushImage(client, 'payments/api', { tags: ['a'] })
    const request = await createDeletion(app, paula, {
      verb: 'untag',
      targets: [{ repository: 'payments/api', tag: 'a' }],
    })
    await waitForState(app, request.id)
    await settled(app)
    t.same(received(receiver.requests), {
      everything: ['deletion.approved', 'deletion.executed', 'deletion.requested'],
      'payments-requests': ['deletion.requested'],
    })
  },
)

t.test('an execution the queue gives up on announces deletion.failed', async (t) => {
  const { app, client, receiver, proxy } = await setup(t, undefined, { proxy: true })
  await pushImage(client, 'payments/api', { tags: ['a'] })
  proxy!.addFault({ method: 'DELETE', fault: { kind: 'status', status: 500, body: '{"errors":[]}' } })
  const request = await createDeletion(app, paula, {
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'a' }],
  })
  const done = await waitForState(app, request.id)
  t.equal(done.state, 'failed')
  await settled(app)
  t.same(received(receiver.requests), {
    everything: ['deletion.approved', 'deletion.failed', 'deletion.requested'],
    'payments-requests': ['deletion.requested'],
  })
  const [failed] = await deliveries(app, admin, '?type=deletion.failed')
  t.match(failed!.data, { state: 'failed', progress: { failed: 1, deleted: 0 } })
  t.equal(failed!.summary, done.summary, 'the summary of the failed request')
})

t.test('a state change that rolls back leaves no delivery behind', async (t) => {
  const { app, client, receiver } = await setup(t)
  await pushImage(client, 'payments/api', { tags: ['a'] })
  // Make the last statement of an auto-approved request fail: by then `deletion.requested` has been
  // emitted inside the same transaction, so it must vanish with the rollback.
  await app.db.query(`
    CREATE FUNCTION test_refuse_job_link() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
    CREATE TRIGGER test_refuse_job_link BEFORE UPDATE OF job_id ON deletion_requests
      FOR EACH ROW EXECUTE FUNCTION test_refuse_job_link();`)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers: paula,
    payload: {
      registry: 'local',
      reason: 'x',
      verb: 'untag',
      targets: [{ repository: 'payments/api', tag: 'a' }],
    },
  })
  t.equal(res.statusCode, 500)
  const requests = await app.db.query('SELECT count(*)::int AS n FROM deletion_requests')
  t.equal(requests.rows[0].n, 0, 'the request rolled back')
  await sleep(700)
  t.same(await deliveries(app, admin), [], 'and so did its notifications')
  t.equal(receiver.requests.length, 0)
})

t.test('GC runs announce gc.finished and gc.failed to the gc webhook only', async (t) => {
  // The collector exits with the code in this file: 0 first, then 1.
  const dir = mkdtempSync(path.join(tmpdir(), 'regent-notify-gc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const exitCode = path.join(dir, 'exit-code')
  writeFileSync(exitCode, '0')
  const { app, receiver } = await setup(t, {
    executor: { kind: 'command', argv: ['sh', '-c', `exit $(cat ${exitCode})`], timeoutMs: 10_000 },
    dryRunFirst: false,
    verify: 'none',
    quietPeriodMs: 0,
  })
  const runGc = async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/registries/local/gc',
      headers: admin,
      payload: {},
    })
    t.equal(res.statusCode, 201, res.body)
    const id = res.json().id as string
    const [delivery] = await waitForDeliveries(app, admin, `?webhook=gc&subject=${id}`, (items) =>
      items.some((i) => i.state === 'delivered'),
    )
    const run = (await app.inject({ url: `/v1/gc-runs/${id}`, headers: admin })).json()
    return { delivery: delivery!, run }
  }

  const ok = await runGc()
  t.equal(ok.run.state, 'succeeded')
  t.equal(ok.delivery.type, 'gc.finished')
  t.equal(ok.delivery.registry, 'local')
  t.same(ok.delivery.teams, [])
  t.equal(ok.delivery.summary, ok.run.summary, "the run's own summary")

  writeFileSync(exitCode, '1')
  const bad = await runGc()
  t.equal(bad.run.state, 'failed')
  t.equal(bad.delivery.type, 'gc.failed')
  t.match(bad.delivery.data, { state: 'failed', failedStep: 'gc' })
  t.equal(bad.delivery.summary, bad.run.summary)

  await settled(app)
  t.same(received(receiver.requests), {
    everything: ['gc.failed', 'gc.finished'],
    gc: ['gc.failed', 'gc.finished'],
  })
  const slack = receiver.requests.filter((r) => r.url === '/gc').map((r) => JSON.parse(r.body).text)
  t.same(slack.sort(), [bad.run.summary, ok.run.summary].sort(), 'the slack text is the summary')
})
