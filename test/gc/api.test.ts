import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { notifyGcRunChanged } from '../../src/gc/updates.js'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build, createTestDatabase, testConfig } from '../helper.js'
import { subscribeGraphql } from '../helpers/graphql-ws.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import {
  admin,
  garbageCollect,
  gcAppConfig,
  getRunView,
  paula,
  pushLayered,
  randomLayer,
  requestDeletion,
  requestGc,
  setupGc,
  waitForRun,
  waitForState,
} from './support.js'

t.test(
  'only admins request a GC; unknown registries, registries without gc and unknown runs are clear errors',
  async (t) => {
    const registry = await withRegistry(t)
    const app = await build(t, {
      config: {
        registries: [
          { ...registryConfig(registry, { name: 'local' }), gc: { executor: { kind: 'none' } } },
          registryConfig(registry, { name: 'plain' }),
        ],
        worker: false,
      },
    })
    const denied = await requestGc(app, {}, paula)
    t.equal(denied.statusCode, 403)
    t.equal(denied.json().error.code, 'REGENT_FORBIDDEN')
    const refusal = (await app.inject({ url: '/v1/audit?action=gc.request_refused', headers: admin })).json()
      .items
    t.equal(refusal.length, 1, 'the refusal is audited')
    t.equal(refusal[0].actorSubject, 'paula')

    const unknown = await requestGc(app, {}, admin, 'nowhere')
    t.equal(unknown.statusCode, 404)
    t.equal(unknown.json().error.code, 'REGENT_REGISTRY_UNKNOWN')
    const plain = await requestGc(app, {}, admin, 'plain')
    t.equal(plain.statusCode, 409)
    t.equal(plain.json().error.code, 'REGENT_GC_NOT_CONFIGURED')
    const bad = await requestGc(app, { dryRun: 'yes' } as never)
    t.equal(bad.statusCode, 400)
    const missing = await app.inject({
      url: '/v1/gc-runs/00000000-0000-4000-8000-000000000000',
      headers: admin,
    })
    t.equal(missing.statusCode, 404)
    t.equal(missing.json().error.code, 'REGENT_GC_RUN_NOT_FOUND')
    const anonymous = await app.inject({ url: '/v1/gc-runs', headers: authHeaders({ sub: 'nobody' }) })
    t.equal(anonymous.statusCode, 403, 'reading runs needs a role')

    const gql = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: paula,
      payload: { query: 'mutation { requestGc(registry: "local") { id } }' },
    })
    t.equal(gql.json().errors[0].extensions.code, 'REGENT_FORBIDDEN', 'GraphQL carries the same code')
    const created = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: admin,
      payload: {
        query: 'mutation { requestGc(registry: "local", dryRun: true) { id state dryRun summary } }',
      },
    })
    const run = created.json().data.requestGc
    t.match(run, { state: 'queued', dryRun: true })
    const again = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: admin,
      payload: { query: 'mutation { requestGc(registry: "local") { id } }' },
    })
    t.equal(again.json().errors[0].extensions.code, 'REGENT_GC_ALREADY_RUNNING')
    const one = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: paula,
      payload: { query: `{ gcRun(id: "${run.id}") { id trigger requestedBy { subject } } }` },
    })
    t.same(one.json().data.gcRun, { id: run.id, trigger: 'manual', requestedBy: { subject: 'root' } })
  },
)

t.test('a cron slot fires once across replicas; a slot finding a run queued is skipped', async (t) => {
  const registry = await withRegistry(t)
  const databaseUrl = await createTestDatabase(t)
  const config = {
    registries: [
      {
        ...registryConfig(registry, { name: 'local' }),
        gc: { executor: { kind: 'none' }, schedule: '0 0,1 29 2 *' },
      },
    ],
    worker: false,
  }
  const [one, two] = await Promise.all([build(t, { databaseUrl, config }), build(t, { databaseUrl, config })])
  // Leap-day slots: the replicas' own minute timers cannot hit one while the test runs.
  const now = new Date('2028-02-29T00:00:30Z')
  const fired = await Promise.all([one.gcScheduler.tick(now), two.gcScheduler.tick(now)])
  const outcomes = fired.flat().map((f) => f.outcome)
  t.same(outcomes.sort(), ['queued', 'taken'], 'one replica queued the run, the other found the slot taken')
  const runId = fired.flat().find((f) => f.outcome === 'queued')!.runId!
  t.equal((await getRunView(one, runId)).trigger, 'schedule')
  t.same(await one.gcScheduler.tick(now), [], 'a slot is checked once per replica')

  const later = await two.gcScheduler.tick(new Date('2028-02-29T01:00:10Z'))
  t.equal(later.length, 1)
  t.match(later[0]!.outcome, /^skipped: run .* is queued$/)
  const db = new pg.Client({ connectionString: databaseUrl })
  db.on('error', () => {})
  await db.connect()
  t.teardown(() => db.end())
  const slots = await db.query('SELECT slot, outcome FROM gc_schedule_slots ORDER BY slot')
  t.equal(slots.rows.length, 2)
  const runs = await db.query('SELECT count(*)::int AS n FROM gc_runs')
  t.equal(runs.rows[0].n, 1)

  const broken = await testConfig(t, {
    config: {
      registries: [
        {
          ...registryConfig(registry, { name: 'local' }),
          gc: { executor: { kind: 'none' }, schedule: '61 * * * *' },
        },
      ],
      worker: false,
    },
  })
  await t.rejects(buildApp(broken), /registries\[0\]\.gc\.schedule: invalid cron expression/)
})

t.test(
  'restoreWindowMs makes a GC wait until the newest deletion is old enough, without spending attempts',
  async (t) => {
    const { app, client } = await setupGc(t, { gc: () => ({ restoreWindowMs: 60_000 }) })
    await pushLayered(client, 'payments/api', 'recent', [randomLayer()])
    const request = await requestDeletion(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'recent' }],
    })
    await waitForState(app, request.id)
    const res = await requestGc(app)
    const queued = await waitForRun(
      app,
      res.json().id,
      [],
      10_000,
      (run) => Date.parse(run.notBefore) > Date.now() + 30_000,
    )
    t.equal(queued.state, 'queued', 'the run waits')
    const deletion = (await app.inject({ url: `/v1/deletions/${request.id}`, headers: admin })).json()
    t.ok(
      Date.parse(queued.notBefore) - Date.parse(deletion.updatedAt) > 55_000,
      'until the window has passed',
    )
    const job = (await app.inject({ url: `/v1/jobs/${queued.jobId}`, headers: admin })).json()
    t.match(job.lastError, /waiting for the restore window/)
    t.equal(job.attempts, 0)
    const restore = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/restore`,
      headers: admin,
    })
    t.equal(restore.statusCode, 200, 'meanwhile the deletion can still be undone')
  },
)

t.test('gcRunUpdated streams a run from another replica’s worker until it ends', async (t) => {
  const registry = await withRegistry(t)
  const databaseUrl = await createTestDatabase(t)
  const gc = { executor: garbageCollect(registry.configPath), storagePath: registry.storageDir }
  const api = await build(t, { databaseUrl, config: gcAppConfig(registry.url, gc, { worker: false }) })
  await api.listen({ port: 0, host: '127.0.0.1' })
  const port = (api.server.address() as { port: number }).port
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  // (On a registry that never held a repository distribution's collector fails: no repositories folder.)
  await pushLayered(client, 'payments/api', 'one', [randomLayer()])
  const run = (await requestGc(api, { dryRun: true })).json()

  // The worker replica starts once the subscription is in place, which shows when it delivers a
  // first update: until then the test announces the queued run again and again.
  let worker: Promise<unknown> | undefined
  let announcing: Promise<void> = Promise.resolve()
  const result = await subscribeGraphql({
    port,
    authorization: paula.authorization!,
    query: 'subscription ($id: ID!) { gcRunUpdated(id: $id) { state steps { name } } }',
    variables: { id: run.id },
    onSubscribed: () => {
      announcing = (async () => {
        while (!worker) {
          await notifyGcRunChanged(api.db, run.id)
          await sleep(100)
        }
      })()
    },
    until: (data) => {
      worker ??= build(t, { databaseUrl, config: gcAppConfig(registry.url, gc, { worker: true }) })
      return ['succeeded', 'failed'].includes((data.gcRunUpdated as { state: string }).state)
    },
  })
  await announcing
  await worker
  const updates = result.updates.map(
    (data) => data.gcRunUpdated as { state: string; steps: { name: string }[] },
  )
  t.equal(updates[0]!.state, 'queued', 'the subscription answered before the worker started')
  const fromWorker = updates.filter((u) => u.state !== 'queued')
  t.ok(fromWorker.length >= 2, `several updates arrived (${fromWorker.length})`)
  t.equal(fromWorker[0]!.state, 'running')
  t.same(updates.at(-1), { state: 'succeeded', steps: [{ name: 'dry-run' }] })
})
