import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build, createTestDatabase } from '../helper.js'
import { pod } from '../helpers/fake-kubernetes.js'
import { type PushedImage, pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { kubeSource, withFakeCluster } from '../usage/support.js'
import { admin, fastJobs, waitForState } from './support.js'

/**
 * Deletion plans and execution know what runs: a real docker-registry, a fake Kubernetes API
 * server answering list requests as the real one does, and the usage source syncing from it.
 */

const rita = authHeaders({ sub: 'rita', groups: ['payments'], roles: ['requester'] })
const alex = authHeaders({ sub: 'alex', groups: ['payments'], roles: ['requester', 'approver'] })

async function setup(t: Test, inUse: 'refuse' | 'admin-only' | 'warn', approvals: 'none' | 1 = 'none') {
  const { cluster, kubeconfig } = await withFakeCluster(t)
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const app = await build(t, {
    databaseUrl: await createTestDatabase(t),
    config: {
      registries: [registryConfig(registry, { name: 'local', retries: 0 })],
      governance: {
        teams: [
          {
            name: 'payments',
            repositories: [{ pattern: 'payments/**' }],
            approvals: { ownRepositories: approvals },
          },
        ],
        inUse: { default: inUse },
      },
      usage: { sources: [kubeSource('prod', kubeconfig)] },
      worker: true,
      jobs: fastJobs,
    },
  })
  const host = new URL(registry.url).host
  /** A pod of the cluster running this image (the digest the kubelet reports, as a real one does). */
  const runs = (name: string, image: PushedImage, tag: string) =>
    pod({
      namespace: 'payments',
      name,
      containers: [
        {
          name: 'api',
          image: `${host}/${image.repository}:${tag}`,
          imageID: `docker-pullable://${host}/${image.repository}@${image.digest}`,
        },
      ],
    })
  const sync = async () => t.equal((await app.usage.sync('prod')).outcome, 'succeeded', 'the source synced')
  return { cluster, client, app, runs, sync }
}

async function file(app: Awaited<ReturnType<typeof setup>>['app'], tag: string, dryRun = false) {
  return app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers: rita,
    payload: {
      registry: 'local',
      verb: 'delete-manifest',
      reason: 'cleanup',
      targets: [{ repository: 'payments/api', tag }],
      ...(dryRun ? { dryRun } : {}),
    },
  })
}

t.test('refuse (the default): a digest a pod runs is refused by the plan, the pod named', async (t) => {
  const { cluster, client, app, runs, sync } = await setup(t, 'refuse')
  const running = await pushImage(client, 'payments/api', { tags: ['v1', 'old-v1'] })
  const idle = await pushImage(client, 'payments/api', { tags: ['old-v0'] })
  cluster.objects.Pod = [runs('api-7d9f-1', running, 'v1')]
  await sync()

  const refused = await file(app, 'old-v1')
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().error.code, 'REGENT_IN_USE')
  t.match(refused.json().error.message, /running in prod\/payments pod\/api-7d9f-1/)
  t.ok(await client.headManifest('payments/api', running.digest), 'nothing deleted')

  const dry = await file(app, 'old-v1', true)
  const [item] = dry.json().plan.items
  t.match(item.inUse, {
    status: 'in-use',
    policy: 'refuse',
    where: [{ kind: 'Pod', name: 'api-7d9f-1', by: 'running' }],
  })

  const page = (
    await app.inject({ url: '/v1/registries/local/repositories/payments%2Fapi/tags', headers: admin })
  ).json()
  const byName = new Map(page.items.map((i: { name: string; inUse?: object }) => [i.name, i.inUse]))
  t.match(
    byName.get('v1'),
    { status: 'in-use', reason: /running in prod\/payments pod\/api-7d9f-1/ },
    'browsing marks it',
  )
  t.match(byName.get('old-v1'), { status: 'in-use' }, 'every tag of a running image')
  t.equal(byName.get('old-v0'), undefined, 'and nothing else')

  const fine = await file(app, 'old-v0')
  t.equal(fine.statusCode, 201, 'an image nothing runs is deleted as usual')
  t.equal((await waitForState(app, fine.json().id)).state, 'succeeded')
  t.notOk(await client.headManifest('payments/api', idle.digest))
})

t.test(
  'admin-only: an image in use needs an admin’s approval; warn: the plan says so and proceeds',
  async (t) => {
    t.test('admin-only', async (t) => {
      const { cluster, client, app, runs, sync } = await setup(t, 'admin-only')
      const running = await pushImage(client, 'payments/api', { tags: ['v2', 'old-v2'] })
      cluster.objects.Pod = [runs('api-1', running, 'v2')]
      await sync()
      const filed = await file(app, 'old-v2')
      t.equal(filed.statusCode, 201)
      const request = filed.json()
      t.equal(request.state, 'awaiting_approval', 'no longer approved by the team setting alone')
      t.equal(request.approvals.required.adminCount, 1)
      t.match(request.plan.items[0].protection, {
        level: 'admin-only',
        rule: /running in prod\/payments pod\/api-1/,
      })
      const byTeam = await app.inject({
        method: 'POST',
        url: `/v1/deletions/${request.id}/approvals`,
        headers: alex,
        payload: { decision: 'approve' },
      })
      t.equal(byTeam.statusCode, 403, 'an approver of the team is not enough')
      const byAdmin = await app.inject({
        method: 'POST',
        url: `/v1/deletions/${request.id}/approvals`,
        headers: admin,
        payload: { decision: 'approve' },
      })
      t.equal(byAdmin.statusCode, 200)
      t.equal((await waitForState(app, request.id)).state, 'succeeded', 'an admin’s approval covers it')
    })
    t.test('warn', async (t) => {
      const { cluster, client, app, runs, sync } = await setup(t, 'warn')
      const running = await pushImage(client, 'payments/api', { tags: ['v3'] })
      cluster.objects.Pod = [runs('api-2', running, 'v3')]
      await sync()
      const filed = await file(app, 'v3')
      t.equal(filed.statusCode, 201)
      t.match(filed.json().plan.warnings.join('\n'), /payments\/api:v3: running in prod\/payments pod\/api-2/)
      t.equal(filed.json().plan.items[0].inUse.policy, 'warn')
      t.equal((await waitForState(app, filed.json().id)).state, 'succeeded')
    })
  },
)

t.test(
  'a source that stops answering: past its staleness limit, deletions are refused (fail closed)',
  async (t) => {
    const { cluster, client, app, sync } = await setup(t, 'refuse')
    await pushImage(client, 'payments/api', { tags: ['old'] })
    await sync()
    t.equal((await file(app, 'old')).statusCode, 201, 'while the source is fresh, an unused image goes')

    await pushImage(client, 'payments/api', { tags: ['older'] })
    await cluster.close()
    t.equal((await app.usage.sync('prod')).outcome, 'failed', 'the source stopped answering')
    // Tests cannot wait out the 30-minute staleness limit: the last success is moved back instead.
    await app.db.query("UPDATE usage_sources SET last_success_at = last_success_at - interval '31 minutes'")
    const refused = await file(app, 'older')
    t.equal(refused.statusCode, 409)
    t.equal(refused.json().error.code, 'REGENT_USAGE_UNKNOWN')
    t.match(refused.json().error.message, /usage unknown: source prod/)
    const sources = (await app.inject({ url: '/v1/usage/sources', headers: admin })).json().items
    t.equal(sources[0].stale, true)
    t.ok(sources[0].lastError, `the error is shown: ${sources[0].lastError}`)
  },
)

t.test('usage appearing between approval and execution stops the item: plan_changed, in use', async (t) => {
  const { cluster, client, app, runs, sync } = await setup(t, 'refuse', 1)
  const image = await pushImage(client, 'payments/api', { tags: ['candidate'] })
  await sync()
  const filed = await file(app, 'candidate')
  t.equal(filed.json().state, 'awaiting_approval')

  // While it waits, a rollout starts running the image.
  cluster.objects.Pod = [runs('api-rollout-1', image, 'candidate')]
  await sync()
  const approved = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${filed.json().id}/approvals`,
    headers: alex,
    payload: { decision: 'approve' },
  })
  t.equal(approved.statusCode, 200)
  const done = await waitForState(app, filed.json().id)
  t.equal(done.state, 'partially_failed')
  const items = (await app.inject({ url: `/v1/deletions/${filed.json().id}/items`, headers: admin })).json()
    .items
  t.equal(items[0].outcome, 'plan_changed')
  t.match(items[0].error, /is now in use: running in prod\/payments pod\/api-rollout-1/)
  t.ok(await client.headManifest('payments/api', 'candidate'), 'the running image is still there')
})
