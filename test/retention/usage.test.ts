import t from 'tap'
import { waitForState } from '../deletions/support.js'
import { cronJob } from '../helpers/fake-kubernetes.js'
import { pushImage } from '../helpers/fixtures.js'
import { kubeSource, withFakeCluster } from '../usage/support.js'
import { admin, createPolicy, preview, pushedDaysAgo, runPolicy, setup } from './support.js'

t.test(
  'a CronJob naming repo:nightly keeps that tag and its digest out of every retention run, with the reason in the preview',
  async (t) => {
    const { cluster, kubeconfig } = await withFakeCluster(t)
    const { client, app, registry } = await setup(t, {
      worker: true,
      usage: { sources: [kubeSource('prod', kubeconfig)] },
    })
    const registryHost = new URL(registry.url).host
    cluster.objects.CronJob = [
      cronJob({
        namespace: 'batch',
        name: 'nightly-report',
        containers: [{ name: 'report', image: `${registryHost}/payments/batch:nightly` }],
      }),
    ]
    const nightly = await pushImage(client, 'payments/batch', { tags: ['nightly', 'sha-1a2b'] })
    const old1 = await pushImage(client, 'payments/batch', { tags: ['old-1'] })
    const old2 = await pushImage(client, 'payments/batch', { tags: ['old-2'] })
    await pushImage(client, 'payments/batch', { tags: ['v1', 'v2'] })
    t.equal((await app.usage.sync('prod')).outcome, 'succeeded')
    // A pull is a weaker signal: the verdict mentions it, and it keeps nothing by itself.
    await pushedDaysAgo(app, 'payments/batch', [{ ...old1, tag: 'old-1' }], 3, 'pull')
    const pulled = (
      await app.usage.usageOf('local', 'payments/batch', [{ digest: old1.digest, tags: ['old-1'] }])
    ).get(old1.digest)
    t.equal(pulled?.status, 'unused')
    t.equal(app.usage.describe(pulled!), 'not in use; pulled 3d ago')

    const policy = await createPolicy(app, {
      name: 'batch-cleanup',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/**'],
      mode: 'auto',
      rules: [
        { description: 'releases', select: { include: ['v*'] }, keep: { always: true } },
        { description: 'everything else', select: { tagStatus: 'any' }, expire: { always: true } },
      ],
    })

    const seen = await preview(app, policy.id)
    for (const tag of ['nightly', 'sha-1a2b']) {
      const verdict = seen.verdicts.find((v) => v.tag === tag)
      t.equal(verdict?.verdict, 'keep', `${tag} is kept`)
      t.equal(verdict?.decidedBy, 'in-use')
      t.equal(verdict?.fact, 'referenced by tag nightly in prod/batch cronjob/nightly-report')
    }
    t.equal(seen.verdicts.find((v) => v.tag === 'old-1')?.verdict, 'expire')
    const counts = seen.counts as typeof seen.counts & { keptInUse: number }
    t.equal(counts.keptInUse, 1, 'the preview counts what usage kept')
    t.equal((seen.guard as typeof seen.guard & { keptInUse: number }).keptInUse, 1, 'and so does the guard')
    t.match(seen.summary, /1 manifest kept because in use/)

    const run = await runPolicy(app, policy.id)
    t.equal(run.state, 'executing', run.summary)
    t.same(
      run.expired.map((e: { digest: string }) => e.digest).sort(),
      [old1.digest, old2.digest].sort(),
      'the run files only what is not in use',
    )
    t.equal(run.counts.keptInUse, 1)
    t.match(run.summary, /1 kept because in use/)
    t.equal((await waitForState(app, run.deletionId)).state, 'succeeded')
    for (const tag of ['nightly', 'sha-1a2b'])
      t.equal(
        (await client.headManifest('payments/batch', tag))?.digest,
        nightly.digest,
        `${tag} still resolves`,
      )
    t.notOk(await client.headManifest('payments/batch', 'old-1'), 'what is not in use went')

    // The source goes stale: usage is unknown, which counts as in use, and nothing is expired.
    await app.db.query("UPDATE usage_sources SET last_success_at = last_success_at - interval '2 hours'")
    await pushImage(client, 'payments/batch', { tags: ['old-3'] })
    const stale = await preview(app, policy.id)
    const old3 = stale.verdicts.find((v) => v.tag === 'old-3')
    t.equal(old3?.verdict, 'keep', 'fail closed while the source is stale')
    t.match(old3?.fact, /^usage unknown: source prod not synced within the staleness limit/)
    const rerun = await runPolicy(app, policy.id)
    t.equal(rerun.state, 'nothing', rerun.summary)
    const deletions = (await app.inject({ url: '/v1/deletions', headers: admin })).json()
    t.equal(deletions.items.length, 1, 'no second deletion request')
  },
)
