import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { RegistryClient } from '../../src/oci/index.js'
import { fastJobs } from '../deletions/support.js'
import { build } from '../helper.js'
import {
  cronJob,
  type FakeKubernetes,
  job,
  pod,
  startFakeKubernetes,
  workload,
} from '../helpers/fake-kubernetes.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { admin, digestOf, kubeSource, viewer, withFakeCluster } from './support.js'

const ALIAS = 'registry.internal:5000'

/**
 * A cluster "prod" as a platform team runs it: a Deployment with its current ReplicaSet (3 pods, by
 * tag) and an old one kept for rollback (by digest, 0 replicas), a worker scaled to zero pinned by
 * `repo:tag@digest`, a nightly CronJob by tag with the Job and pod of its last run, a pod with an
 * init container (bare `sha256:` imageID) and an ephemeral debug container, and public images
 * Regent does not front.
 */
function populate(cluster: FakeKubernetes, host: string, d: { api: string }) {
  const api = `${ALIAS}/payments/api:v1`
  cluster.objects.Deployment = [
    workload('Deployment', {
      namespace: 'payments',
      name: 'api',
      replicas: 3,
      containers: [{ name: 'app', image: api }],
    }),
    workload('Deployment', {
      namespace: 'payments',
      name: 'worker',
      replicas: 0,
      containers: [{ name: 'worker', image: `${host}/payments/worker:3.1@${digestOf(0xa1)}` }],
    }),
    workload('Deployment', {
      namespace: 'web',
      name: 'nginx',
      containers: [{ name: 'nginx', image: 'nginx:1.27' }],
    }),
  ]
  cluster.objects.ReplicaSet = [
    workload('ReplicaSet', {
      namespace: 'payments',
      name: 'api-6f7d',
      replicas: 3,
      owner: { kind: 'Deployment', name: 'api' },
      containers: [{ name: 'app', image: api }],
    }),
    workload('ReplicaSet', {
      namespace: 'payments',
      name: 'api-5c4b',
      replicas: 0,
      owner: { kind: 'Deployment', name: 'api' },
      containers: [{ name: 'app', image: `${host}/payments/api@${digestOf(0xb0)}` }],
    }),
  ]
  cluster.objects.StatefulSet = [
    workload('StatefulSet', {
      namespace: 'data',
      name: 'pg',
      containers: [{ name: 'pg', image: 'postgres:16' }],
    }),
  ]
  cluster.objects.DaemonSet = [
    workload('DaemonSet', {
      namespace: 'kube-system',
      name: 'agent',
      containers: [{ name: 'agent', image: `${host}/infra/agent:2` }],
    }),
  ]
  cluster.objects.CronJob = [
    cronJob({
      namespace: 'batch',
      name: 'nightly',
      containers: [{ name: 'report', image: `${ALIAS}/batch/report:nightly` }],
    }),
  ]
  cluster.objects.Job = [
    job({
      namespace: 'batch',
      name: 'nightly-29031',
      owner: { kind: 'CronJob', name: 'nightly' },
      containers: [{ name: 'report', image: `${ALIAS}/batch/report:nightly` }],
    }),
  ]
  cluster.objects.Pod = [
    ...[1, 2, 3].map((i) =>
      pod({
        namespace: 'payments',
        name: `api-6f7d-${i}`,
        owner: { kind: 'ReplicaSet', name: 'api-6f7d' },
        containers: [
          { name: 'app', image: api, imageID: `docker-pullable://${ALIAS}/payments/api@${d.api}` },
        ],
        initContainers: [{ name: 'migrate', image: `${host}/payments/migrate:2`, imageID: digestOf(0xc2) }],
        ...(i === 1
          ? {
              ephemeralContainers: [
                {
                  name: 'debug',
                  image: `${host}/tools/debug:1`,
                  imageID: `${host}/tools/debug@${digestOf(0xd1)}`,
                },
              ],
            }
          : {}),
      }),
    ),
    pod({
      namespace: 'batch',
      name: 'nightly-29031-x7',
      owner: { kind: 'Job', name: 'nightly-29031' },
      containers: [
        {
          name: 'report',
          image: `${ALIAS}/batch/report:nightly`,
          imageID: `${ALIAS}/batch/report@${digestOf(0xe1)}`,
        },
      ],
    }),
    pod({
      namespace: 'web',
      name: 'nginx-1',
      containers: [
        { name: 'nginx', image: 'nginx:1.27', imageID: `docker.io/library/nginx@${digestOf(0xf1)}` },
      ],
    }),
  ]
}

async function setup(t: Test, options: { worker?: boolean } = {}) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const image = await pushImage(client, 'payments/api', { tags: ['v1'] })
  const { cluster, kubeconfig } = await withFakeCluster(t)
  const host = new URL(registry.url).host
  populate(cluster, host, { api: image.digest })
  const app = await build(t, {
    config: {
      registries: [registryConfig(registry, { name: 'local', retries: 0, aliases: [ALIAS] })],
      usage: { sources: [kubeSource('prod', kubeconfig)] },
      worker: options.worker ?? false,
      jobs: fastJobs,
      browse: { tagTtlMs: 0 },
    },
  })
  return { app, cluster, image, host }
}

async function verdict(app: FastifyInstance, repository: string, digest: string, tags: string[] = []) {
  const found = (await app.usage.usageOf('local', repository, [{ digest, tags }])).get(digest)
  if (!found) throw new Error('no verdict')
  return { ...found, summary: app.usage.describe(found) }
}

t.test('a sync reads pods and every workload template, paging, and maps images to registries', async (t) => {
  const { app, cluster, image } = await setup(t)
  const result = await app.usage.sync('prod')
  t.equal(result.outcome, 'succeeded', result.error ?? '')
  t.equal(result.counts.pods, 5)
  t.equal(result.counts.workloads, 9)
  t.ok((result.counts.unmatched ?? 0) >= 3, 'nginx and postgres are not images Regent fronts')
  t.ok(
    cluster.requests.some((r) => r.path === '/api/v1/pods' && r.query.limit === '2' && r.query.continue),
    'pods were listed in pages of 2',
  )

  const running = await verdict(app, 'payments/api', image.digest, ['v1'])
  t.equal(running.status, 'in-use')
  t.match(
    running.summary,
    /^running in prod\/payments deploy\/api, 3 pods/,
    'pods are reported by their Deployment',
  )

  const rollback = await verdict(app, 'payments/api', digestOf(0xb0))
  t.equal(rollback.status, 'in-use', 'a ReplicaSet kept for rollback protects its digest')
  t.equal(rollback.summary, 'referenced by digest in prod/payments rs/api-5c4b')

  const worker = await verdict(app, 'payments/worker', digestOf(0xa1))
  t.equal(
    worker.summary,
    'referenced by digest in prod/payments deploy/worker',
    'a workload scaled to zero counts',
  )
  const workerTag = await verdict(app, 'payments/worker', digestOf(0xa2), ['3.1'])
  t.equal(workerTag.status, 'unused', 'repo:tag@digest pulls the digest: the tag alone is not in use')

  const init = await verdict(app, 'payments/migrate', digestOf(0xc2), ['2'])
  t.equal(init.status, 'in-use')
  t.equal(init.where[0]?.by, 'running', 'an init container with a bare sha256: imageID')
  const debug = await verdict(app, 'tools/debug', digestOf(0xd1))
  t.equal(debug.summary, 'running in prod/payments deploy/api, 1 pod', 'an ephemeral container')

  const nightly = await verdict(app, 'batch/report', digestOf(0x99), ['nightly'])
  t.equal(nightly.status, 'in-use', 'the tag the CronJob names protects whatever digest it points at now')
  t.match(nightly.summary, /^referenced by tag nightly in prod\/batch (cronjob\/nightly|job\/nightly-29031)/)
  const lastRun = await verdict(app, 'batch/report', digestOf(0xe1))
  t.equal(lastRun.summary, 'running in prod/batch cronjob/nightly, 1 pod', 'the pod of a CronJob run')

  t.equal((await verdict(app, 'infra/agent', digestOf(0x77), ['2'])).status, 'in-use', 'a DaemonSet by tag')
  const unused = await verdict(app, 'payments/api', digestOf(0x55), ['v0'])
  t.equal(unused.status, 'unused')
  t.equal(unused.summary, 'not in use')

  // The REST route: references, and with a digest the verdict with the tags the registry reports.
  const res = await app.inject({
    url: `/v1/usage?registry=local&repository=payments%2Fapi&digest=${image.digest}`,
    headers: viewer,
  })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.same(body.verdict.tags, ['v1'])
  t.equal(body.verdict.status, 'in-use')
  t.match(body.verdict.summary, /^running in prod\/payments deploy\/api, 3 pods/)
  t.match(body.items, [{ kind: 'Deployment', name: 'api', running: true, pods: 3, digest: image.digest }])
  t.equal(body.items.length, 1, "a workload's pods are one reference")
  const rollbackRows = (
    await app.inject({ url: `/v1/usage?registry=local&digest=${digestOf(0xb0)}`, headers: viewer })
  ).json()
  t.match(rollbackRows.items, [
    { kind: 'ReplicaSet', name: 'api-5c4b', owner: { kind: 'Deployment', name: 'api' } },
  ])
  const all = (await app.inject({ url: '/v1/usage?registry=local&limit=5', headers: viewer })).json()
  t.equal(all.items.length, 5)
  t.type(all.nextCursor, 'string')
  const next = (
    await app.inject({ url: `/v1/usage?registry=local&limit=1000&cursor=${all.nextCursor}`, headers: viewer })
  ).json()
  t.notOk(
    next.items.some((i: { id: string }) => all.items.some((j: { id: string }) => j.id === i.id)),
    'pages do not overlap',
  )
  t.equal(
    (await app.inject({ url: '/v1/usage?registry=nope', headers: viewer })).json().error.code,
    'REGENT_REGISTRY_UNKNOWN',
  )
  t.equal(
    (await app.inject({ url: '/v1/usage?registry=local&digest=sha256:12', headers: viewer })).statusCode,
    400,
  )
  t.equal(
    (await app.inject({ url: '/v1/usage?registry=local&cursor=bogus', headers: viewer })).json().error.code,
    'REGENT_INVALID_CURSOR',
  )

  const gql = await app.inject({
    method: 'POST',
    url: '/graphql',
    headers: viewer,
    payload: {
      query: `{ usage(registry: "local", repository: "payments/api", digest: "${image.digest}", first: 2) {
        nodes { kind name pods running } pageInfo { hasNextPage }
        verdict { status summary where { kind name pods by } } }
        usageSources { name stale lastOutcome counts } }`,
    },
  })
  const data = gql.json().data
  t.match(data.usage.verdict.summary, /^running in prod\/payments deploy\/api, 3 pods/)
  t.same(data.usage.verdict.where[0], { kind: 'Deployment', name: 'api', pods: 3, by: 'running' })
  t.same(data.usage.nodes, [{ kind: 'Deployment', name: 'api', pods: 3, running: true }])
  t.equal(data.usage.pageInfo.hasNextPage, false)
  t.equal(data.usageSources[0].lastOutcome, 'succeeded')
  t.equal(data.usageSources[0].counts.pods, 5)
})

t.test(
  'an expired continue token restarts the list; too many expiries fail the sync and change nothing',
  async (t) => {
    const { app, cluster, image } = await setup(t)
    cluster.failContinues = 1
    const first = await app.usage.sync('prod')
    t.equal(first.outcome, 'succeeded', first.error ?? '')
    t.equal(first.counts.restarts, 1, 'one list started over')
    const expired = cluster.requests.findIndex((r) => r.query.continue)
    t.notOk(
      cluster.requests[expired + 1]?.query.continue,
      'the next request starts that list from its first page',
    )
    t.equal(
      (await verdict(app, 'payments/api', digestOf(0xb0))).status,
      'in-use',
      'the ReplicaSets are all read',
    )

    cluster.objects.Pod = []
    cluster.failContinues = 100
    const second = await app.usage.sync('prod')
    t.equal(second.outcome, 'failed')
    t.match(second.error, /410 Expired/)
    t.match(
      (await verdict(app, 'payments/api', image.digest, ['v1'])).summary,
      /^running in prod\/payments deploy\/api, 3 pods/,
      'a failed sync leaves the last picture as it was',
    )
  },
)

t.test(
  'a sync replaces its rows: what left the cluster is no longer in use, first seen survives',
  async (t) => {
    const { app, cluster, image } = await setup(t)
    await app.usage.sync('prod')
    const before = (
      await app.usage.usageOf('local', 'payments/api', [{ digest: image.digest, tags: [] }])
    ).get(image.digest)
    cluster.objects.Pod = cluster.objects.Pod.filter((p) => p.metadata.name !== 'api-6f7d-3')
    cluster.objects.ReplicaSet = cluster.objects.ReplicaSet.filter((r) => r.metadata.name !== 'api-5c4b')
    await sleep(20)
    t.equal((await app.usage.sync('prod')).outcome, 'succeeded')
    const after = await verdict(app, 'payments/api', image.digest, [])
    t.equal(after.summary, 'running in prod/payments deploy/api, 2 pods')
    t.equal(after.where[0]?.firstSeenAt, before?.where[0]?.firstSeenAt, 'first seen is kept across syncs')
    t.equal(
      (await verdict(app, 'payments/api', digestOf(0xb0))).status,
      'unused',
      'the rollback ReplicaSet is gone',
    )
  },
)

t.test(
  'a source that stops answering: the error is visible, and after its staleness limit usage is unknown',
  async (t) => {
    const { app, cluster } = await setup(t)
    const before = (await app.inject({ url: '/v1/usage/sources', headers: viewer })).json().items[0]
    t.equal(before.stale, true, 'never synced: stale')
    t.equal((await verdict(app, 'payments/api', digestOf(0x55))).status, 'unknown', 'no sync yet: unknown')

    t.equal((await app.usage.sync('prod')).outcome, 'succeeded')
    t.equal((await verdict(app, 'payments/api', digestOf(0x55))).status, 'unused')

    cluster.down = true
    const failed = await app.usage.sync('prod')
    t.equal(failed.outcome, 'failed')
    const source = (await app.inject({ url: '/v1/usage/sources', headers: viewer })).json().items[0]
    t.equal(source.lastOutcome, 'failed')
    t.match(source.lastError, /GET \/apis\/apps\/v1\/replicasets/)
    t.equal(source.stale, false, 'within its staleness limit the last picture stands')
    t.type(source.lastSyncDurationMs, 'number')
    t.equal((await verdict(app, 'payments/api', digestOf(0x55))).status, 'unused')

    // Tests cannot wait 30 minutes: the last success is moved back instead.
    await app.db.query("UPDATE usage_sources SET last_success_at = last_success_at - interval '31 minutes'")
    const stale = await verdict(app, 'payments/api', digestOf(0x55))
    t.equal(stale.status, 'unknown')
    t.same(stale.staleSources, ['prod'])
    t.match(stale.summary, /^usage unknown: source prod not synced within the staleness limit/)
    t.ok(app.usage.countsAsInUse(stale), 'unknown counts as in use by default')
    t.equal((await app.inject({ url: '/v1/usage/sources', headers: viewer })).json().items[0].stale, true)
    const metrics = (await app.inject({ url: '/metrics' })).body
    t.match(metrics, /regent_usage_source_stale\{source="prod"\} 1/)
    t.match(metrics, /regent_usage_source_last_sync_failed\{source="prod"\} 1/)
    t.match(metrics, /regent_usage_syncs_total\{source="prod",outcome="failed"\} 1/)
  },
)

t.test('the API server refuses a wrong token: the sync fails without echoing it', async (t) => {
  const registry = await withRegistry(t)
  const { cluster, dir } = await withFakeCluster(t)
  const kubeconfig = cluster.kubeconfig(dir, { token: 'wrong-token-123' })
  const app = await build(t, {
    config: {
      registries: [registryConfig(registry, { name: 'local' })],
      usage: { sources: [kubeSource('prod', kubeconfig)] },
    },
  })
  const result = await app.usage.sync('prod')
  t.equal(result.outcome, 'failed')
  t.match(result.error, /401 Unauthorized.*credentials were refused/)
  t.notMatch(result.error, /wrong-token-123/)
})

t.test('a sync runs as a job: an admin asks for one, a viewer may not', async (t) => {
  const { app, image } = await setup(t, { worker: true })
  const refused = await app.inject({ method: 'POST', url: '/v1/usage/sources/prod/sync', headers: viewer })
  t.equal(refused.statusCode, 403)
  const unknown = await app.inject({ method: 'POST', url: '/v1/usage/sources/nope/sync', headers: admin })
  t.equal(unknown.json().error.code, 'REGENT_USAGE_SOURCE_NOT_FOUND')
  const res = await app.inject({ method: 'POST', url: '/v1/usage/sources/prod/sync', headers: admin })
  t.equal(res.statusCode, 202)
  const { jobId } = res.json()
  for (let i = 0; i < 150; i++) {
    const job = (await app.inject({ url: `/v1/jobs/${jobId}`, headers: admin })).json()
    if (job.state === 'succeeded' || job.state === 'failed') break
    await sleep(100)
  }
  const job = (await app.inject({ url: `/v1/jobs/${jobId}`, headers: admin })).json()
  t.equal(job.state, 'succeeded', job.lastError ?? '')
  t.equal((await verdict(app, 'payments/api', image.digest, ['v1'])).status, 'in-use')
})

t.test(
  'in-cluster: the service account token and CA, the API server from KUBERNETES_SERVICE_HOST/PORT',
  async (t) => {
    const cluster = await startFakeKubernetes({ tls: true })
    const dir = mkdtempSync(path.join(tmpdir(), 'regent-sa-'))
    t.teardown(async () => {
      await cluster.close()
      rmSync(dir, { recursive: true, force: true })
    })
    writeFileSync(path.join(dir, 'token'), `${cluster.token}\n`)
    writeFileSync(path.join(dir, 'ca.crt'), cluster.caPem as string)
    cluster.objects.Pod = [
      pod({ namespace: 'x', name: 'p', containers: [{ name: 'c', image: 'registry.example.com/a/b:1' }] }),
    ]
    const url = new URL(cluster.url)
    const config = loadConfig(
      { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port },
      {
        registries: [{ name: 'prod', url: 'https://registry.example.com' }],
        usage: {
          inCluster: { tokenFile: path.join(dir, 'token'), caFile: path.join(dir, 'ca.crt') },
          sources: [{ name: 'here', kind: 'kubernetes' }],
        },
      },
    )
    t.equal(config.usage.inCluster.servicePort, Number(url.port), 'the port variable is read through config')
    const app = await build(t, { config: { registries: config.registries, usage: config.usage } })
    const result = await app.usage.sync('here')
    t.equal(result.outcome, 'succeeded', result.error ?? '')
    t.equal(result.counts.references, 1)
    const verdict = (await app.usage.usageOf('prod', 'a/b', [{ digest: digestOf(1), tags: ['1'] }])).get(
      digestOf(1),
    )
    t.equal(
      app.usage.describe(verdict!),
      'referenced by tag 1 in here/x pod/p',
      'a bare pod is its own place',
    )

    const outside = await build(t, {
      config: { registries: config.registries, usage: { sources: [{ name: 'here', kind: 'kubernetes' }] } },
    })
    t.match((await outside.usage.sync('here')).error, /KUBERNETES_SERVICE_HOST is not set/)
  },
)
