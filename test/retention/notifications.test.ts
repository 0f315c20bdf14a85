import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startCaptureServer } from '../helpers/capture-server.js'
import { pushImage } from '../helpers/fixtures.js'
import { createPolicy, pushedDaysAgo, runPolicy, setup } from './support.js'

/** Owners hear before a scheduled run deletes their tags, and when a run proposes a deletion. */
t.test('a warning ahead of a scheduled run, and a notice when a run files its request', async (t) => {
  const receiver = await startCaptureServer({ status: 200 })
  t.teardown(receiver.stop)
  const { client, app } = await setup(t, {
    worker: true,
    retention: { warnBeforeMinutes: 60 },
    env: { HOOK_SECRET: 'hook-secret' },
    notifications: {
      webhooks: [
        {
          name: 'payments',
          url: `${receiver.url}/hook`,
          events: ['policy.*'],
          format: 'json',
          secretEnv: 'HOOK_SECRET',
          teams: ['payments'],
        },
      ],
    },
  })
  const old = await pushImage(client, 'payments/api', { tags: ['tmp-1'] })
  await pushImage(client, 'payments/api', { tags: ['v1'] })
  await pushedDaysAgo(app, 'payments/api', [{ ...old, tag: 'tmp-1' }], 10)
  const policy = await createPolicy(app, {
    name: 'new-year',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/**'],
    schedule: '0 0 1 1 *',
    rules: [{ select: { include: ['tmp-*'] }, expire: { olderThan: { age: '5d', by: 'push' } } }],
  })

  // Half an hour before the next 1 January: the slot is within warnBeforeMinutes.
  const year = new Date().getUTCFullYear() + 1
  const slot = new Date(Date.UTC(year, 0, 1))
  const fired = await app.retentionScheduler.tick(new Date(slot.getTime() - 30 * 60_000))
  t.same(
    fired.map((f) => [f.outcome, f.slot.toISOString()]),
    [['warning', slot.toISOString()]],
  )
  t.same(
    await app.retentionScheduler.tick(new Date(slot.getTime() - 29 * 60_000)),
    [],
    'warned once per slot',
  )

  const delivered = async (type: string) => {
    for (let i = 0; i < 200; i++) {
      const found = receiver.requests.find((r) => JSON.parse(r.body).type === type)
      if (found) return JSON.parse(found.body)
      await sleep(100)
    }
    throw new Error(`no ${type} delivery`)
  }
  const warning = await delivered('policy.warning')
  t.equal(warning.subject, policy.id)
  t.match(
    warning.summary,
    new RegExp(`Retention policy new-year will delete 1 manifest \\(1 tag, .*\\) at ${slot.toISOString()}`),
  )
  t.same(warning.data.expired, [{ repository: 'payments/api', digest: old.digest, tags: ['tmp-1'] }])

  const run = await runPolicy(app, policy.id)
  t.equal(run.state, 'proposed')
  const proposed = await delivered('policy.proposed')
  t.equal(proposed.data.deletionId, run.deletionId)
  t.match(proposed.summary, /proposed deletion .* awaiting approval/)
  t.ok(await client.headManifest('payments/api', 'tmp-1'), 'a warning and a proposal delete nothing')
})
