import pg from 'pg'
import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build, createTestDatabase } from '../helper.js'
import { inParallel } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import {
  admin,
  complete,
  garbageCollect,
  gcAppConfig,
  getRunView,
  type LayeredImage,
  paula,
  pushLayered,
  type RunView,
  randomLayer,
  requestDeletion,
  requestGc,
  setupGc,
  waitForRun,
  waitForState,
} from './support.js'

const QUIET_MS = 2500

t.test('deleting 200 tags in 5 requests leads to one coalesced GC run, after the quiet period', async (t) => {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const databaseUrl = await createTestDatabase(t)
  const gc = {
    executor: garbageCollect(registry.configPath),
    storagePath: registry.storageDir,
    quietPeriodMs: QUIET_MS,
  }
  const api = await build(t, { databaseUrl, config: gcAppConfig(registry.url, gc, { worker: false }) })

  const names = Array.from({ length: 5 }, (_, r) => Array.from({ length: 40 }, (_, i) => `g${r}-${i}`)).flat()
  const images: LayeredImage[] = []
  await inParallel(names, 8, async (tag) => {
    images.push(await pushLayered(client, 'payments/bulk', tag, [randomLayer(256)]))
  })
  const kept = await pushLayered(client, 'payments/bulk', 'kept', [randomLayer(256)])
  const expectedBytes = images.reduce((sum, i) => sum + i.bytes.length + i.config.size + i.layers[0]!.size, 0)

  // Five requests queued first, then one worker replica runs them all.
  const requests = []
  for (let r = 0; r < 5; r++) {
    requests.push(
      await requestDeletion(api, {
        verb: 'delete-manifest',
        targets: [{ repository: 'payments/bulk', tagPattern: `g${r}-*` }],
      }),
    )
  }
  await build(t, { databaseUrl, config: gcAppConfig(registry.url, gc, { worker: true }) })
  for (const request of requests) t.equal((await waitForState(api, request.id)).state, 'succeeded')

  let runs: RunView[] = []
  const deadline = Date.now() + 30_000
  for (;;) {
    runs = (await api.inject({ url: '/v1/gc-runs?registry=local', headers: admin })).json().items
    if (runs.some((r) => r.state === 'succeeded') || Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(runs.length, 1, 'one GC run for the five requests')
  const run = await getRunView(api, runs[0]!.id)
  t.equal(run.state, 'succeeded', 'it succeeded', { log: run.log })
  t.equal(run.trigger, 'coalesced')
  t.equal(run.collected.blobs, 600, 'it collected the 200 manifests, configs and layers')
  t.equal(run.bytesFreed, expectedBytes, `and freed their ${expectedBytes} bytes`)
  t.same(await complete(client, kept), [])

  const db = new pg.Client({ connectionString: databaseUrl })
  db.on('error', () => {})
  await db.connect()
  t.teardown(() => db.end())
  const facts = await db.query<{
    jobs: number
    requested: number
    last: Date
    closed: number
    items: number
  }>(
    `SELECT (SELECT count(*)::int FROM jobs WHERE kind = 'gc.run') AS jobs,
            (SELECT count(*)::int FROM audit_events WHERE action = 'gc.requested') AS requested,
            (SELECT max(executed_at) FROM deletion_requests) AS last,
            (SELECT count(*)::int FROM deletion_items WHERE state = 'deleted' AND NOT restorable) AS closed,
            (SELECT count(*)::int FROM deletion_items) AS items`,
  )
  const f = facts.rows[0]!
  t.equal(f.jobs, 1, 'one gc.run job')
  t.equal(f.requested, 1, 'requested once; later deletions only pushed it back')
  t.equal(f.items, 200)
  t.equal(f.closed, 200, 'every deleted item is no longer restorable')
  t.ok(
    Date.parse(run.startedAt!) >= f.last.getTime() + QUIET_MS - 50,
    `it started ${Date.parse(run.startedAt!) - f.last.getTime()} ms after the last deletion finished (quiet period ${QUIET_MS} ms)`,
  )
})

t.test(
  'a restore works before the GC and is refused with REGENT_RESTORE_WINDOW_CLOSED after it',
  async (t) => {
    const { app, client } = await setupGc(t)
    const first = await pushLayered(client, 'payments/api', 'first', [randomLayer(2000)])
    const second = await pushLayered(client, 'payments/api', 'second', [randomLayer(2000)])
    const del = (tag: string) =>
      requestDeletion(app, { verb: 'delete-manifest', targets: [{ repository: 'payments/api', tag }] })

    const one = await del('first')
    await waitForState(app, one.id)
    const restored = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${one.id}/restore`,
      headers: paula,
    })
    t.equal(restored.statusCode, 200, 'before a GC the deletion can be undone')
    t.equal(restored.json().state, 'restored')
    t.same(await complete(client, first), [], 'the restored image is whole')

    const two = await del('second')
    await waitForState(app, two.id)
    const res = await requestGc(app)
    t.equal(res.statusCode, 201)
    const run = await waitForRun(app, res.json().id)
    t.equal(run.state, 'succeeded', 'the GC succeeded', { log: run.log })

    const refused = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${two.id}/restore`,
      headers: paula,
    })
    t.equal(refused.statusCode, 409)
    t.equal(refused.json().error.code, 'REGENT_RESTORE_WINDOW_CLOSED')
    t.notOk(await client.headManifest('payments/api', second.digest), 'nothing was pushed back')
    t.same(await complete(client, first), [], 'the image restored before the GC survived it')
    const closed = (
      await app.inject({ url: '/v1/audit?action=gc.restore_window_closed', headers: admin })
    ).json().items
    t.equal(closed.length, 1)
    t.equal(closed[0].details.items, 1, 'one deleted item lost its restore window')
  },
)
