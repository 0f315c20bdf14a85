import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { fastJobs } from '../deletions/support.js'
import { build, createTestDatabase } from '../helper.js'
import { pod } from '../helpers/fake-kubernetes.js'
import { kubeSource, withFakeCluster } from './support.js'

t.test('two replicas sync a source once per slot of its interval, from the schedule alone', async (t) => {
  const { cluster, kubeconfig } = await withFakeCluster(t)
  cluster.objects.Pod = [
    pod({ namespace: 'x', name: 'p', containers: [{ name: 'c', image: 'registry.example.com/a/b:1' }] }),
  ]
  const databaseUrl = await createTestDatabase(t)
  const config = {
    registries: [{ name: 'prod', url: 'https://registry.example.com' }],
    usage: { sources: [kubeSource('prod', kubeconfig, { refreshIntervalMs: 1000, staleAfterMs: 60000 })] },
    worker: true,
    jobs: fastJobs,
  }
  const started = Date.now()
  const replicas = [await build(t, { databaseUrl, config }), await build(t, { databaseUrl, config })]
  const app = replicas[0]!
  let jobs: { unique_key: string; state: string }[] = []
  for (let i = 0; i < 200; i++) {
    jobs = (
      await app.db.query<{ unique_key: string; state: string }>(
        "SELECT unique_key, state FROM jobs WHERE kind = 'usage.sync' ORDER BY unique_key",
      )
    ).rows
    if (jobs.filter((j) => j.state === 'succeeded').length >= 3) break
    await sleep(100)
  }
  // Stop the timers before counting, so no slot is added after the last look.
  for (const replica of replicas) replica.usageScheduler.stop()
  const ended = Date.now()
  jobs = (
    await app.db.query<{ unique_key: string; state: string }>(
      "SELECT unique_key, state FROM jobs WHERE kind = 'usage.sync' ORDER BY unique_key",
    )
  ).rows
  t.ok(jobs.filter((j) => j.state === 'succeeded').length >= 3, `syncs ran: ${JSON.stringify(jobs)}`)
  const slots = Math.floor(ended / 1000) - Math.floor(started / 1000) + 1
  t.ok(
    jobs.length <= slots,
    `at most one sync per slot (${jobs.length} jobs in ${slots} slots), not one per replica`,
  )
  t.equal(new Set(jobs.map((j) => j.unique_key)).size, jobs.length)
  const source = (await app.usage.sourceViews())[0]
  t.equal(source?.lastOutcome, 'succeeded')
  t.equal(source?.counts.references, 1)
})
