import pg from 'pg'
import t, { type Test } from 'tap'
import type { ExecutionHooks } from '../../src/deletions/execute.js'
import { RegistryClient } from '../../src/oci/index.js'
import { build, createTestDatabase } from '../helper.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { type PushedImage, pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { admin, fastJobs, governance, paula, requestDeletion, waitForState } from './support.js'

async function setup(
  t: Test,
  options: {
    proxy?: boolean
    worker?: boolean
    jobs?: object
    maxAttempts?: number
    executionHooks?: ExecutionHooks
  } = {},
) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const proxy = options.proxy ? await startFaultProxy(registry.url) : undefined
  if (proxy) t.teardown(proxy.stop)
  const databaseUrl = await createTestDatabase(t)
  const config = {
    registries: [registryConfig(proxy ?? registry, { name: 'local', retries: 0 })],
    governance,
    worker: options.worker ?? true,
    jobs: { ...fastJobs, ...options.jobs },
    deletions: { maxAttempts: options.maxAttempts ?? 5 },
  }
  const app = await build(t, {
    databaseUrl,
    config,
    ...(options.executionHooks ? { executionHooks: options.executionHooks } : {}),
  })
  return { registry, client, proxy, app, databaseUrl, config }
}

async function pullable(client: RegistryClient, image: PushedImage, reference: string): Promise<boolean> {
  const head = await client.headManifest(image.repository, reference)
  if (!head || head.digest !== image.digest) return false
  for (const blob of [image.config, ...image.layers]) {
    if (!(await client.headBlob(image.repository, blob.digest))) return false
  }
  return true
}

t.test(
  'an approved delete-manifest runs: the manifest is gone, one audit event per item, progress complete',
  async (t) => {
    const { client, app } = await setup(t)
    const a = await pushImage(client, 'payments/api', { tags: ['a'] })
    const b = await pushImage(client, 'payments/api', { tags: ['b'] })
    const keep = await pushImage(client, 'payments/api', { tags: ['keep'] })
    const request = await requestDeletion(app, {
      verb: 'delete-manifest',
      targets: [
        { repository: 'payments/api', tag: 'a' },
        { repository: 'payments/api', tag: 'b' },
      ],
    })
    const done = await waitForState(app, request.id)
    t.equal(done.state, 'succeeded')
    t.same(done.progress, { total: 2, pending: 0, deleted: 2, skipped: 0, failed: 0 })
    t.notOk(await client.headManifest('payments/api', a.digest), 'a is gone')
    t.notOk(await client.headManifest('payments/api', b.digest), 'b is gone')
    t.ok(await pullable(client, keep, 'keep'), 'the other tag is untouched')
    const audit = (await app.inject({ url: `/v1/audit?deletionId=${request.id}`, headers: admin })).json()
      .items
    t.equal(audit.filter((e: { action: string }) => e.action === 'manifest.deleted').length, 2)
    t.same(
      audit
        .map((e: { action: string }) => e.action)
        .filter((a: string) => a.startsWith('deletion.'))
        .reverse(),
      [
        'deletion.requested',
        'deletion.approved',
        'deletion.queued',
        'deletion.running',
        'deletion.succeeded',
      ],
    )
    const executed = audit.find((e: { action: string }) => e.action === 'manifest.deleted')
    t.equal(executed.onBehalfOf, 'paula', 'the worker acts for the requester')
    const job = await app.inject({ url: `/v1/jobs/${done.jobId}`, headers: admin })
    t.equal(job.json().state, 'succeeded')
  },
)

t.test('untag on distribution 2.8 removes only that tag: siblings and the image stay pullable', async (t) => {
  const { client, app } = await setup(t)
  const image = await pushImage(client, 'payments/api', { tags: ['v1', 'latest'] })
  const request = await requestDeletion(app, {
    verb: 'untag',
    targets: [{ repository: 'payments/api', tag: 'latest' }],
  })
  const done = await waitForState(app, request.id)
  t.equal(done.state, 'succeeded')
  t.notOk(await client.headManifest('payments/api', 'latest'), 'latest is gone')
  t.ok(await pullable(client, image, 'v1'), 'v1 and every blob are still there')
  t.ok(await pullable(client, image, image.digest), 'the manifest is still there by digest')
})

t.test(
  'a tag re-pushed between approval and execution is skipped, stays pullable, and the skip is recorded',
  async (t) => {
    const { client, app, databaseUrl, config } = await setup(t, { worker: false })
    await pushImage(client, 'payments/api', { tags: ['moving'] })
    const request = await requestDeletion(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'moving' }],
    })
    t.equal(request.state, 'queued')
    const moved = await pushImage(client, 'payments/api', { tags: ['moving'] })
    const worker = await build(t, { databaseUrl, config: { ...config, worker: true } })
    const done = await waitForState(worker, request.id)
    t.equal(done.state, 'succeeded', 'a skipped item is not a failure')
    t.same(done.progress, { total: 1, pending: 0, deleted: 0, skipped: 1, failed: 0 })
    t.ok(await pullable(client, moved, 'moving'), 'the re-pushed image is untouched')
    const skipped = (await app.inject({ url: `/v1/audit?action=item.skipped`, headers: admin })).json().items
    t.equal(skipped.length, 1)
    t.equal(skipped[0].outcome, 'tag_moved')
  },
)

t.test(
  'a registry answering 500 forever gets exactly maxAttempts DELETEs, then the request fails, audited',
  async (t) => {
    const { client, app, proxy } = await setup(t, { proxy: true, maxAttempts: 3 })
    const image = await pushImage(client, 'payments/api', { tags: ['doomed'] })
    proxy!.addFault({
      method: 'DELETE',
      fault: { kind: 'status', status: 500, body: '{"errors":[{"code":"UNKNOWN"}]}' },
    })
    const request = await requestDeletion(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'doomed' }],
    })
    const done = await waitForState(app, request.id)
    t.equal(done.state, 'failed')
    // (The capability probe sends DELETEs of a random digest and tag; only this image's count here.)
    t.equal(proxy!.count('DELETE', new RegExp(image.digest)), 3, 'one DELETE per attempt, no blind retries')
    t.ok(await pullable(client, image, 'doomed'))
    const job = (await app.inject({ url: `/v1/jobs/${done.jobId}`, headers: admin })).json()
    t.equal(job.state, 'failed')
    t.equal(job.attempts, 3)
    const failed = (await app.inject({ url: `/v1/audit?action=deletion.failed`, headers: admin })).json()
      .items
    t.equal(failed.length, 1)
  },
)

t.test('while a registry call is slowed to 5 s no session of the app is idle in a transaction', async (t) => {
  const { client, app, proxy, databaseUrl } = await setup(t, { proxy: true })
  const image = await pushImage(client, 'payments/api', { tags: ['slow'] })
  // Only the image's own DELETE: the capability probe's DELETEs need not wait 5 s each.
  proxy!.addFault({ method: 'DELETE', path: new RegExp(image.digest), fault: { kind: 'delay', ms: 5000 } })
  const request = await requestDeletion(app, {
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'slow' }],
  })
  const observer = new pg.Client({ connectionString: databaseUrl })
  // Dropping the test database at teardown terminates this session; that is not a failure.
  observer.on('error', () => {})
  await observer.connect()
  t.teardown(() => observer.end())
  const dbName = new URL(databaseUrl).pathname.slice(1)
  let samples = 0
  let worst = 0
  const deadline = Date.now() + 4500
  while (Date.now() < deadline) {
    const { rows } = await observer.query<{ age: number }>(
      `SELECT extract(epoch FROM now() - xact_start) * 1000 AS age FROM pg_stat_activity
       WHERE datname = $1 AND state = 'idle in transaction' AND pid <> pg_backend_pid()`,
      [dbName],
    )
    for (const row of rows) worst = Math.max(worst, Number(row.age))
    samples++
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(proxy!.count('DELETE', new RegExp(image.digest)) >= 1, 'the DELETE was in flight while sampling')
  t.ok(samples > 40, `sampled ${samples} times`)
  // A transaction held across the 5 s call would be seen idling for seconds; the bound leaves the
  // short ones room for a loaded machine.
  t.ok(
    worst < 1000,
    `no transaction idled across the registry call (longest idle transaction ${worst.toFixed(0)} ms)`,
  )
  t.equal((await waitForState(app, request.id)).state, 'succeeded')
})

t.test('two service processes on one database split the work; no item is deleted twice', async (t) => {
  const ran = { first: 0, second: 0 }
  // Requests are queued while no worker runs; then two worker processes start on the same
  // database, each running at most 3 jobs at once, so neither can take all 6.
  const { client, app, proxy, databaseUrl, config } = await setup(t, { proxy: true, worker: false })
  const requests = []
  const digests = new Set<string>()
  for (let r = 0; r < 6; r++) {
    const tags = []
    for (let i = 0; i < 3; i++) {
      digests.add((await pushImage(client, 'payments/api', { tags: [`r${r}-${i}`], layers: 1 })).digest)
      tags.push(`r${r}-${i}`)
    }
    requests.push(
      await requestDeletion(app, {
        verb: 'delete-manifest',
        targets: tags.map((tag) => ({ repository: 'payments/api', tag })),
      }),
    )
  }
  const workerConfig = { ...config, worker: true, jobs: { ...config.jobs, concurrency: 3 } }
  const slow = () => new Promise<void>((resolve) => setTimeout(resolve, 50))
  await Promise.all([
    build(t, {
      databaseUrl,
      config: workerConfig,
      executionHooks: {
        beforeDelete: () => {
          ran.first++
          return slow()
        },
      },
    }),
    build(t, {
      databaseUrl,
      config: workerConfig,
      executionHooks: {
        beforeDelete: () => {
          ran.second++
          return slow()
        },
      },
    }),
  ])
  for (const request of requests) t.equal((await waitForState(app, request.id)).state, 'succeeded')
  const deletes = proxy!.requests
    .filter((r) => r.method === 'DELETE')
    .map((r) => r.url.split('/').at(-1)!)
    .filter((digest) => digests.has(digest))
  t.equal(deletes.length, 18, 'one DELETE per item')
  t.equal(new Set(deletes).size, 18, 'no digest was deleted twice')
  const audited = await app.db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM audit_events WHERE action = 'manifest.deleted'`,
  )
  t.equal(audited.rows[0]!.n, '18', 'one deletion audit event per item')
  t.ok(ran.first > 0 && ran.second > 0, `both processes deleted items (${ran.first} and ${ran.second})`)
  t.equal(ran.first + ran.second, 18)
})

t.test('a deleted tag is restored and pullable again (manifest and every blob) before GC', async (t) => {
  const { client, app } = await setup(t)
  const image = await pushImage(client, 'payments/api', { tags: ['oops', 'oops-alias'] })
  const request = await requestDeletion(app, {
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'oops' }],
  })
  t.equal((await waitForState(app, request.id)).state, 'succeeded')
  t.notOk(await client.headManifest('payments/api', 'oops'))
  const viewer = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${request.id}/restore`,
    headers: {
      ...admin,
      authorization: (await import('../helper.js')).authHeaders({
        sub: 'v',
        groups: ['payments'],
        roles: ['viewer'],
      }).authorization,
    },
  })
  t.equal(viewer.statusCode, 403, 'a viewer cannot restore')
  const restored = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${request.id}/restore`,
    headers: paula,
  })
  t.equal(restored.statusCode, 200)
  t.equal(restored.json().state, 'restored')
  t.ok(await pullable(client, image, 'oops'), 'oops is back')
  t.ok(await pullable(client, image, 'oops-alias'), 'so is the tag that vanished with it')
  const again = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${request.id}/restore`,
    headers: paula,
  })
  t.equal(again.statusCode, 409)
  const events = (await app.inject({ url: `/v1/audit?action=manifest.restored`, headers: admin })).json()
    .items
  t.equal(events.length, 1)
})

t.test('retry re-runs only the failed items', async (t) => {
  const { client, app, proxy } = await setup(t, { proxy: true, maxAttempts: 1 })
  const ok = await pushImage(client, 'payments/api', { tags: ['fine'] })
  const bad = await pushImage(client, 'payments/api', { tags: ['flaky'] })
  proxy!.addFault({
    method: 'DELETE',
    path: new RegExp(bad.digest),
    fault: { kind: 'status', status: 403, body: '{"errors":[{"code":"DENIED"}]}' },
  })
  const request = await requestDeletion(app, {
    verb: 'delete-manifest',
    targets: [
      { repository: 'payments/api', tag: 'fine' },
      { repository: 'payments/api', tag: 'flaky' },
    ],
  })
  const first = await waitForState(app, request.id)
  t.equal(first.state, 'partially_failed')
  t.same(first.progress, { total: 2, pending: 0, deleted: 1, skipped: 0, failed: 1 })
  t.notOk(await client.headManifest('payments/api', ok.digest))
  proxy!.clearFaults()
  proxy!.resetCounts()
  const retried = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${request.id}/retry`,
    headers: paula,
  })
  t.equal(retried.statusCode, 200)
  t.equal(retried.json().state, 'queued')
  const second = await waitForState(app, request.id)
  t.equal(second.state, 'succeeded')
  t.equal(proxy!.count('DELETE'), 1, 'only the failed item was sent again')
  t.notOk(await client.headManifest('payments/api', bad.digest))
})

t.test(
  'fifty concurrent identical POSTs with one Idempotency-Key: one request, one job, one DELETE per item',
  async (t) => {
    const { client, app, proxy } = await setup(t, { proxy: true })
    const images = [
      await pushImage(client, 'payments/api', { tags: ['i1'] }),
      await pushImage(client, 'payments/api', { tags: ['i2'] }),
    ]
    const body = {
      registry: 'local',
      verb: 'delete-manifest',
      reason: 'dupes',
      targets: [
        { repository: 'payments/api', tag: 'i1' },
        { repository: 'payments/api', tag: 'i2' },
      ],
    }
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        app.inject({
          method: 'POST',
          url: '/v1/deletions',
          headers: { ...paula, 'idempotency-key': 'same' },
          payload: body,
        }),
      ),
    )
    const ids = new Set(answers.map((a) => a.json().id))
    t.equal(ids.size, 1, 'one request')
    const [id] = ids
    await waitForState(app, id as string)
    const jobs = await app.db.query("SELECT count(*)::int AS n FROM jobs WHERE kind = 'deletion.execute'")
    t.equal(jobs.rows[0].n, 1, 'one job')
    for (const image of images) {
      t.equal(proxy!.count('DELETE', new RegExp(image.digest)), 1, `one DELETE for ${image.tags[0]}`)
    }
    const events = await app.db.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'manifest.deleted'",
    )
    t.equal(events.rows[0].n, 2, 'one deletion audit event per item')
  },
)
