import t from 'tap'
import { waitForState } from '../deletions/support.js'
import { build } from '../helper.js'
import { pushImage, pushIndex, tagManifest } from '../helpers/fixtures.js'
import {
  admin,
  createPolicy,
  payApprover,
  payRequester,
  preview,
  pushedDaysAgo,
  runPolicy,
  setup,
  waitForRun,
  webApprover,
} from './support.js'

t.test(
  'a digest shared by two tags, one kept by a rule, is not deleted; the run executes as the policy',
  async (t) => {
    const { client, app } = await setup(t, { worker: true })
    const shared = await pushImage(client, 'payments/api', { tags: ['feature-x', 'v1'] })
    const lonely = await pushImage(client, 'payments/api', { tags: ['feature-y'] })
    const fresh = await pushImage(client, 'payments/api', { tags: ['feature-z'] })
    const keepers = await pushImage(client, 'payments/api', { tags: ['v2', 'v3', 'v4'] })
    await pushedDaysAgo(
      app,
      'payments/api',
      [shared, lonely].map((i) => ({ ...i, tag: i.tags[0] })),
      20,
    )
    await pushedDaysAgo(app, 'payments/api', [{ ...fresh, tag: 'feature-z' }], 1)

    const policy = await createPolicy(app, {
      name: 'features',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/**'],
      mode: 'auto',
      rules: [
        { description: 'releases', select: { include: ['v*'] }, keep: { always: true } },
        {
          description: 'old features',
          select: { include: ['feature-*'] },
          expire: { olderThan: { age: '14d', by: 'push' } },
        },
      ],
    })

    const seen = await preview(app, policy.id)
    const verdictOf = (tag: string) => seen.verdicts.find((v) => v.tag === tag)
    t.equal(verdictOf('feature-y')?.verdict, 'expire')
    t.match(verdictOf('feature-y')?.fact, /pushed 20d ago \(events\), expire older than 14d/)
    t.equal(verdictOf('feature-x')?.verdict, 'keep', 'feature-x shares its digest with v1')
    t.equal(verdictOf('feature-x')?.decidedBy, 'rules[0] (releases)')
    t.equal(verdictOf('feature-z')?.verdict, 'keep')
    t.match(verdictOf('feature-z')?.fact, /spared: pushed 1d ago/)
    t.equal(verdictOf('v3')?.verdict, 'keep')
    t.equal(seen.counts.expiredArtifacts, 1)
    t.ok(seen.counts.bytes > 0, 'bytes the deletion frees')
    t.notOk(seen.guard.tripped)

    const run = await runPolicy(app, policy.id)
    t.equal(run.state, 'executing', run.summary)
    t.same(run.expired, [{ repository: 'payments/api', digest: lonely.digest, tags: ['feature-y'] }])
    const deletion = await waitForState(app, run.deletionId)
    t.equal(deletion.state, 'succeeded')
    t.equal(deletion.requester.subject, 'policy:features')

    t.notOk(await client.headManifest('payments/api', 'feature-y'), 'the expired tag is gone')
    for (const tag of ['feature-x', 'v1']) {
      t.equal(
        (await client.headManifest('payments/api', tag))?.digest,
        shared.digest,
        `${tag} still resolves`,
      )
    }
    t.equal((await client.headManifest('payments/api', 'v2'))?.digest, keepers.digest)

    const audit = (await app.inject({ url: `/v1/audit?deletionId=${run.deletionId}`, headers: admin })).json()
    const deleted = audit.items.filter((e: { action: string }) => e.action === 'manifest.deleted')
    t.equal(deleted.length, 1)
    t.equal(deleted[0].onBehalfOf, 'policy:features', 'the worker deleted it for the policy')
    const runAudit = (
      await app.inject({ url: '/v1/audit?action=retention.run_finished', headers: admin })
    ).json()
    t.equal(runAudit.items[0]?.actorSubject, 'policy:features')
  },
)

t.test(
  'a policy that would take every tag of a repository stops at the guard and creates nothing',
  async (t) => {
    const { client, app } = await setup(t, { worker: true })
    for (const tag of ['a', 'b', 'c']) await pushImage(client, 'payments/wipe', { tags: [tag] })
    await pushImage(client, 'payments/other', { tags: ['keep'] })
    const policy = await createPolicy(app, {
      name: 'wipe-everything',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/wipe'],
      mode: 'auto',
      rules: [{ select: { tagStatus: 'any' }, expire: { always: true } }],
    })
    const seen = await preview(app, policy.id)
    t.ok(seen.guard.tripped)
    t.match(seen.guard.reasons, [/would delete every tag of payments\/wipe \(3\)/])
    t.match(seen.summary, /a run would stop for an admin/)

    const run = await runPolicy(app, policy.id)
    t.equal(run.state, 'guarded')
    t.equal(run.deletionId, null)
    const deletions = (await app.inject({ url: '/v1/deletions', headers: admin })).json()
    t.equal(deletions.items.length, 0, 'no deletion request exists')
    for (const tag of ['a', 'b', 'c'])
      t.ok(await client.headManifest('payments/wipe', tag), `${tag} untouched`)
    const audit = (await app.inject({ url: '/v1/audit?action=retention.run_guarded', headers: admin })).json()
    t.equal(audit.items.length, 1)

    const notAdmin = await app.inject({
      method: 'POST',
      url: `/v1/policies/${policy.id}/run`,
      headers: payApprover,
      payload: { overrideGuards: true },
    })
    t.equal(notAdmin.statusCode, 403, 'only an admin may override the guard')

    // A share limit trips too: 2 of 3 tags is more than a policy's stricter 50%.
    const share = await createPolicy(app, {
      name: 'two-of-three',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/wipe'],
      guards: { maxShare: 0.5 },
      rules: [{ select: { include: ['a', 'b'] }, expire: { always: true } }],
    })
    t.match((await preview(app, share.id)).guard.reasons, [
      /would delete 2 of 3 tags of payments\/wipe \(67%, limit 50%\)/,
    ])
  },
)

t.test('a kept two-platform index keeps its children; index children are not untagged garbage', async (t) => {
  const { client, app } = await setup(t)
  const index = await pushIndex(client, 'payments/multi', { tags: ['release'] })
  const old = await pushImage(client, 'payments/multi', { tags: ['old'] })
  const orphan = await pushImage(client, 'payments/multi') // pushed by digest only: truly untagged
  await pushedDaysAgo(app, 'payments/multi', [...index.children, index, old, orphan], 30)

  const policy = await createPolicy(app, {
    name: 'untagged-and-old',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/multi'],
    rules: [
      { select: { include: ['release'] }, keep: { always: true } },
      { select: { tagStatus: 'any' }, expire: { olderThan: { age: '7d', by: 'push' } } },
    ],
  })
  const seen = await preview(app, policy.id)
  const byDigest = new Map(seen.verdicts.map((v) => [v.digest, v]))
  t.equal(byDigest.get(index.digest)?.verdict, 'keep')
  for (const child of index.children)
    t.notOk(byDigest.has(child.digest), 'an index child is judged with its index, never alone')
  t.equal(byDigest.get(old.digest)?.verdict, 'expire')
  t.equal(byDigest.get(orphan.digest)?.verdict, 'expire', 'an untagged manifest no index uses is garbage')
  t.equal(byDigest.get(orphan.digest)?.tag, null)

  // The same index, expiring, goes as one image: the plan takes its children with it.
  const all = await createPolicy(app, {
    name: 'all-old',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/multi'],
    guards: {},
    rules: [{ select: { tagStatus: 'any' }, expire: { olderThan: { age: '7d', by: 'push' } } }],
  })
  const everything = await preview(app, all.id)
  t.same(
    everything.verdicts
      .filter((v) => v.verdict === 'expire')
      .map((v) => v.digest)
      .sort(),
    [index.digest, old.digest, orphan.digest].sort(),
  )
  t.ok(everything.guard.tripped, 'and that is every tag of the repository: the guard stops it')
})

t.test(
  'scheduled runs: one per slot across replicas; propose waits for approval; auto executes',
  async (t) => {
    const { client, app, databaseUrl, config, env } = await setup(t, { worker: true })
    await pushImage(client, 'payments/queue', { tags: ['keep-me'] })
    const queueOld = await pushImage(client, 'payments/queue', { tags: ['tmp-1'] })
    const payOld = await pushImage(client, 'payments/batch', { tags: ['tmp-2'] })
    await pushImage(client, 'payments/batch', { tags: ['stay'] })
    await pushedDaysAgo(app, 'payments/queue', [{ ...queueOld, tag: 'tmp-1' }], 10)
    await pushedDaysAgo(app, 'payments/batch', [{ ...payOld, tag: 'tmp-2' }], 10)
    const rules = [{ select: { include: ['tmp-*'] }, expire: { olderThan: { age: '5d', by: 'push' } } }]
    // payments needs no approval for its own repositories, yet a proposing policy waits for a person.
    const propose = await createPolicy(app, {
      name: 'queue-tmp',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/queue'],
      schedule: '* * * * *',
      mode: 'propose',
      rules,
    })
    const auto = await createPolicy(app, {
      name: 'pay-tmp',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/batch'],
      schedule: '*/1 * * * *',
      mode: 'auto',
      rules,
    })

    const replica = await build(t, { databaseUrl, config: { ...config, worker: false }, env })
    const now = new Date()
    const [first, second] = await Promise.all([
      app.retentionScheduler.tick(now),
      replica.retentionScheduler.tick(now),
    ])
    const fired = [...first, ...second].filter((f) => f.outcome !== 'warning')
    const queued = fired.filter((f) => f.outcome === 'queued')
    t.equal(queued.length, 2, 'each policy’s slot fired once')
    t.equal(
      fired.filter((f) => f.outcome === 'taken').length,
      fired.length - 2,
      'the other replica found it taken',
    )

    const runOf = (policyId: string) => queued.find((f) => f.policyId === policyId)?.runId as string
    const proposed = await waitForRun(app, propose.id, runOf(propose.id))
    t.equal(proposed.state, 'proposed', proposed.summary)
    t.equal(proposed.trigger, 'schedule')
    const request = (await app.inject({ url: `/v1/deletions/${proposed.deletionId}`, headers: admin })).json()
    t.equal(request.state, 'awaiting_approval', 'propose mode waits for a person')
    t.ok(
      request.approvals.required.reasons.some((r: string) => /propose mode: a person approves/.test(r)),
      'the reason says why',
    )
    t.ok(await client.headManifest('payments/queue', 'tmp-1'), 'nothing deleted before approval')

    const executed = await waitForRun(app, auto.id, runOf(auto.id))
    t.equal(executed.state, 'executing', executed.summary)
    t.equal((await waitForState(app, executed.deletionId)).state, 'succeeded')
    t.notOk(await client.headManifest('payments/batch', 'tmp-2'), 'auto mode deleted the expired tag')
    t.ok(await client.headManifest('payments/batch', 'stay'))

    const audit = (
      await app.inject({ url: `/v1/audit?deletionId=${executed.deletionId}`, headers: admin })
    ).json()
    const byPolicy = audit.items
      .filter((e: { action: string }) =>
        ['deletion.requested', 'deletion.approved', 'manifest.deleted'].includes(e.action),
      )
      .map(
        (e: { action: string; actorSubject: string; onBehalfOf: string | null; channel: string }) =>
          `${e.action} ${e.actorSubject}${e.onBehalfOf ? ` for ${e.onBehalfOf}` : ''} ${e.channel}`,
      )
      .sort()
    t.same(
      byPolicy,
      [
        'deletion.approved policy:pay-tmp policy',
        'deletion.requested policy:pay-tmp policy',
        'manifest.deleted regent-worker for policy:pay-tmp system',
      ],
      'requested and approved by the rules as the policy; deleted by the worker for it',
    )

    // The same minute again fires nothing new.
    const again = await app.retentionScheduler.tick(now)
    t.equal(again.filter((f) => f.outcome === 'queued').length, 0)
  },
)

t.test(
  'managing policies: who may, what is refused, every change audited, REST and GraphQL alike',
  async (t) => {
    const { client, app } = await setup(t)
    await pushImage(client, 'payments/api', { tags: ['x'] })
    const body = {
      name: 'mine',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/**'],
      rules: [{ select: { include: ['x'] }, expire: { olderThan: { age: '1d', by: 'push' } } }],
    }
    const post = (payload: object, headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/v1/policies', headers, payload })

    t.equal((await post(body, payRequester)).statusCode, 403, 'a requester does not manage policies')
    t.equal((await post(body, webApprover)).statusCode, 403, 'another team’s approver neither')
    t.equal(
      (await post({ ...body, team: null, name: 'global' }, payApprover)).statusCode,
      403,
      'global: admins only',
    )

    const badRule = await post({ ...body, rules: [{ select: {} }] }, payApprover)
    t.equal(badRule.statusCode, 400, badRule.body)
    t.equal(badRule.json().error.code, 'REGENT_INVALID_POLICY')
    t.match(badRule.json().error.message, /rules\[0\]: give exactly one of keep or expire/)
    const badCron = await post({ ...body, schedule: '61 * * * *' }, payApprover)
    t.equal(badCron.json().error.code, 'REGENT_INVALID_POLICY')
    const badPattern = await post(
      { ...body, rules: [{ select: { include: ['/(x/'] }, keep: { always: true } }] },
      payApprover,
    )
    t.equal(badPattern.json().error.code, 'REGENT_INVALID_POLICY')
    const badAge = await post(
      { ...body, rules: [{ expire: { olderThan: { age: 'soon', by: 'push' } } }] },
      payApprover,
    )
    t.equal(badAge.statusCode, 400)
    t.equal(badAge.json().error.code, 'REGENT_VALIDATION')
    t.equal(
      (await post({ ...body, registry: 'nope' }, payApprover)).json().error.code,
      'REGENT_REGISTRY_UNKNOWN',
    )
    t.equal((await post({ ...body, team: 'ghosts' }, admin)).json().error.code, 'REGENT_INVALID_POLICY')

    const created = await post(body, payApprover)
    t.equal(created.statusCode, 201)
    const policy = created.json()
    t.equal((await post(body, payApprover)).json().error.code, 'REGENT_POLICY_NAME_TAKEN')

    const put = await app.inject({
      method: 'PUT',
      url: `/v1/policies/${policy.id}`,
      headers: payApprover,
      payload: { ...body, enabled: false },
    })
    t.equal(put.json().version, 2)
    t.equal(put.json().enabled, false)
    const stolen = await app.inject({
      method: 'PUT',
      url: `/v1/policies/${policy.id}`,
      headers: webApprover,
      payload: { ...body, team: 'web' },
    })
    t.equal(stolen.statusCode, 403)

    const gql = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: admin,
      payload: {
        query: `mutation($input: JSON!) { createRetentionPolicy(input: $input) { id name team rules mode } }`,
        variables: { input: { ...body, name: 'from-graphql', team: null } },
      },
    })
    t.match(gql.json().data.createRetentionPolicy.rules, body.rules)
    t.equal(gql.json().data.createRetentionPolicy.mode, 'propose')
    const gqlBad = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: admin,
      payload: { query: `mutation { createRetentionPolicy(input: { name: "Bad Name" }) { id } }` },
    })
    t.equal(gqlBad.json().errors[0].extensions.code, 'REGENT_VALIDATION')

    const listed = (await app.inject({ url: '/v1/policies', headers: payRequester })).json()
    t.same(
      listed.items.map((p: { name: string }) => p.name),
      ['from-graphql', 'mine'],
    )

    const removed = await app.inject({
      method: 'DELETE',
      url: `/v1/policies/${policy.id}`,
      headers: payApprover,
    })
    t.equal(removed.statusCode, 200)
    t.equal((await app.inject({ url: `/v1/policies/${policy.id}`, headers: admin })).statusCode, 404)

    const audit = (await app.inject({ url: '/v1/audit?limit=100', headers: admin })).json()
    const actions = audit.items.map((e: { action: string }) => e.action)
    for (const action of ['retention.policy_created', 'retention.policy_updated', 'retention.policy_deleted'])
      t.ok(actions.includes(action), `${action} audited`)
  },
)

t.test('preview: an unsaved dry run, and the difference from the previous preview', async (t) => {
  const { client, app } = await setup(t)
  const a = await pushImage(client, 'payments/api', { tags: ['a'] })
  await pushImage(client, 'payments/api', { tags: ['b'] })
  await pushedDaysAgo(app, 'payments/api', [{ ...a, tag: 'a' }], 9)
  const body = {
    name: 'dry',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/**'],
    rules: [{ select: { tagStatus: 'any' }, expire: { olderThan: { age: '7d', by: 'push' } } }],
  }
  const dry = await app.inject({
    method: 'POST',
    url: '/v1/policies/preview',
    headers: payRequester,
    payload: body,
  })
  t.equal(dry.statusCode, 200)
  t.equal(dry.json().id, null, 'nothing stored for an unsaved policy')
  t.same(
    dry
      .json()
      .verdicts.filter((v: { verdict: string }) => v.verdict === 'expire')
      .map((v: { tag: string }) => v.tag),
    ['a'],
  )
  const b = dry.json().verdicts.find((v: { tag: string }) => v.tag === 'b')
  t.match(b.fact, /\(first-seen\)/, 'without events, the time Regent first saw the tag stands in')

  const policy = await createPolicy(app, body)
  const first = await preview(app, policy.id)
  t.equal(first.diff.against, null)
  t.same(
    first.diff.newlyExpired.map((e) => e.digest),
    [a.digest],
  )

  const c = await pushImage(client, 'payments/api', { tags: ['c'] })
  await pushedDaysAgo(app, 'payments/api', [{ ...c, tag: 'c' }], 30)
  await pushedDaysAgo(app, 'payments/api', [{ ...a, tag: 'a' }], 0)
  const second = await preview(app, policy.id)
  t.equal(second.diff.against?.id, first.id)
  t.same(
    second.diff.newlyExpired.map((e) => e.digest),
    [c.digest],
    'c is newly expired',
  )
  t.same(
    second.diff.noLongerExpired.map((e) => e.digest),
    [a.digest],
    'a was pushed again: no longer expired',
  )
  t.match(second.summary, /1 newly, 1 no longer since preview/)
})

t.test(
  'a tag pushed onto an expired digest between evaluation and filing fails the run; nothing is filed',
  async (t) => {
    const { client, app } = await setup(t)
    const old = await pushImage(client, 'payments/api', { tags: ['tmp-1'] })
    await pushImage(client, 'payments/api', { tags: ['v1'] })
    await pushedDaysAgo(app, 'payments/api', [{ ...old, tag: 'tmp-1' }], 10)
    const policy = await createPolicy(app, {
      name: 'racy',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/**'],
      mode: 'auto',
      rules: [{ select: { include: ['tmp-*'] }, expire: { olderThan: { age: '5d', by: 'push' } } }],
    })
    // Someone tags the expiring image `release` right after the evaluation judged it.
    const evaluate = app.retention.evaluate.bind(app.retention)
    app.retention.evaluate = async (fields) => {
      const evaluation = await evaluate(fields)
      await tagManifest(client, 'payments/api', old, ['release'])
      return evaluation
    }
    const queued = await app.inject({
      method: 'POST',
      url: `/v1/policies/${policy.id}/run`,
      headers: payApprover,
    })
    const run = await app.retention.executeRun(queued.json().id)
    t.equal(run.state, 'failed')
    t.match(run.error, /payments\/api:release now point at sha256:.*, which the policy judged without them/)
    t.equal(run.deletionId, null)
    t.equal(
      (await app.inject({ url: '/v1/deletions', headers: admin })).json().items.length,
      0,
      'nothing filed',
    )
    t.equal(
      (await client.headManifest('payments/api', 'release'))?.digest,
      old.digest,
      'release still resolves',
    )
  },
)

t.test("previews need the policy's team: another team's viewer gets 403 and no run is stored", async (t) => {
  const { client, app } = await setup(t)
  await pushImage(client, 'payments/api', { tags: ['a'] })
  const body = {
    name: 'pay-preview',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/**'],
    rules: [{ expire: { always: true } }],
  }
  const policy = await createPolicy(app, body)
  const runs = async () =>
    Number((await app.db.query<{ n: string }>('SELECT count(*) AS n FROM retention_runs')).rows[0]!.n)
  const before = await runs()
  const saved = await app.inject({
    method: 'POST',
    url: `/v1/policies/${policy.id}/preview`,
    headers: webApprover,
  })
  t.equal(saved.statusCode, 403)
  t.equal(saved.json().error.code, 'REGENT_FORBIDDEN')
  const unsaved = await app.inject({
    method: 'POST',
    url: '/v1/policies/preview',
    headers: webApprover,
    payload: body,
  })
  t.equal(unsaved.statusCode, 403, 'an unsaved preview of that team too')
  const global = await app.inject({
    method: 'POST',
    url: '/v1/policies/preview',
    headers: payRequester,
    payload: { ...body, team: null },
  })
  t.equal(global.statusCode, 403, 'a global policy is previewed by admins')
  t.equal(await runs(), before, 'no run row was stored')
  t.equal(
    (await preview(app, policy.id, payRequester)).counts.expiredTags,
    1,
    "the team's own requester may preview",
  )
  t.equal((await preview(app, policy.id, admin)).counts.expiredTags, 1, 'and an admin')
})
