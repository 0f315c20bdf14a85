import t from 'tap'
import { waitForState } from '../deletions/support.js'
import { pushImage } from '../helpers/fixtures.js'
import { createPolicy, preview, pushedDaysAgo, runPolicy, setup } from './support.js'

/**
 * Retention judges the image a tag points to now. `nightly`- and `latest`-style tags are pushed
 * again and again: each new image starts fresh, whatever the tag's earlier images were.
 */

const hourly = {
  name: 'hourly',
  team: 'payments',
  registry: 'local',
  repositories: ['payments/**'],
  mode: 'auto',
  rules: [{ select: { tagStatus: 'tagged' }, expire: { olderThan: { age: '1h', by: 'push' } } }],
}

t.test(
  'a tag pushed again a second before a run (no events) is kept, with the new image’s time',
  async (t) => {
    const { client, app } = await setup(t, { worker: true })
    await pushImage(client, 'payments/api', { tags: ['nightly'] })
    const stale = await pushImage(client, 'payments/api', { tags: ['stale'] })
    const policy = await createPolicy(app, hourly)
    await preview(app, policy.id)
    // Both were first seen two hours ago…
    await app.db.query("UPDATE registry_tag_sightings SET first_seen_at = now() - interval '2 hours'")
    // …and nightly gets a new image now.
    const fresh = await pushImage(client, 'payments/api', { tags: ['nightly'] })

    const seen = await preview(app, policy.id)
    const nightly = seen.verdicts.find((v) => v.tag === 'nightly')
    t.equal(nightly?.digest, fresh.digest)
    t.equal(nightly?.verdict, 'keep')
    t.match(nightly?.fact, /pushed \d+s ago \(first-seen\)/, 'judged by when its new image was first seen')
    t.equal(seen.verdicts.find((v) => v.tag === 'stale')?.verdict, 'expire')

    const run = await runPolicy(app, policy.id)
    t.same(
      run.expired.map((e: { tags: string[] }) => e.tags),
      [['stale']],
    )
    await waitForState(app, run.deletionId)
    t.equal((await client.headManifest('payments/api', 'nightly'))?.digest, fresh.digest, 'nightly survives')
    t.notOk(await client.headManifest('payments/api', stale.digest))
  },
)

t.test(
  'with events: an old image’s events never age the new one, and a late old push changes nothing',
  async (t) => {
    const { client, app } = await setup(t)
    const old = await pushImage(client, 'payments/api', { tags: ['latest'] })
    await pushedDaysAgo(app, 'payments/api', [{ ...old, tag: 'latest' }], 5)
    // The new image's push event is lost on the way: all Regent knows about `latest` is the old push.
    const fresh = await pushImage(client, 'payments/api', { tags: ['latest'] })

    const policy = await createPolicy(app, { ...hourly, mode: 'propose' })
    const first = await preview(app, policy.id)
    const latest = first.verdicts.find((v) => v.tag === 'latest')
    t.equal(latest?.digest, fresh.digest)
    t.equal(latest?.verdict, 'keep', 'not aged by the old image’s five-day-old push')
    t.match(latest?.fact, /pushed \d+s ago \(first-seen\)/)

    // The new push arrives, then the old image's push again, late: nothing moves backwards.
    await pushedDaysAgo(app, 'payments/api', [{ ...fresh, tag: 'latest' }], 0)
    await pushedDaysAgo(app, 'payments/api', [{ ...old, tag: 'latest' }], 4)
    const second = await preview(app, policy.id)
    const after = second.verdicts.find((v) => v.tag === 'latest')
    t.equal(after?.verdict, 'keep')
    t.match(after?.fact, /pushed \d+s ago \(events\)/)
  },
)
