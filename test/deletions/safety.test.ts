import t, { type Test } from 'tap'
import type { ExecutionHooks } from '../../src/deletions/execute.js'
import { MediaTypes, RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build, createTestDatabase } from '../helper.js'
import { type PushedImage, pushImage, pushIndex, sha256 } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { admin, fastJobs, requestDeletion, waitForState } from './support.js'

/**
 * The approved plan is a contract: whatever changes in the registry, the holds or the rules between
 * approval and the DELETE, Regent deletes only what was approved. Every test runs against a real
 * docker-registry 2.8 and changes it the way a busy registry changes.
 */

const requester = authHeaders({ sub: 'rita', groups: ['payments'], roles: ['requester'] })
const approver = authHeaders({ sub: 'alex', groups: ['payments'], roles: ['requester', 'approver'] })

/** payments needs one approval from its own approvers; release tags are immutable. */
const governance = {
  teams: [{ name: 'payments', repositories: [{ pattern: 'payments/**' }] }],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
  protections: [{ repositories: '**', tags: ['v*.*.*'], level: 'immutable', reason: 'releases' }],
}

/** payments deletes its own freely: no approval needed. */
const selfService = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
  ],
}

async function setup(
  t: Test,
  options: { governance?: object; deletions?: object; executionHooks?: ExecutionHooks } = {},
) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const databaseUrl = await createTestDatabase(t)
  const app = await build(t, {
    databaseUrl,
    config: {
      registries: [registryConfig(registry, { name: 'local', retries: 0 })],
      governance: options.governance ?? governance,
      worker: true,
      jobs: fastJobs,
      browse: { tagTtlMs: 0 },
      ...(options.deletions ? { deletions: options.deletions } : {}),
    },
    ...(options.executionHooks ? { executionHooks: options.executionHooks } : {}),
  })
  return { registry, client, app }
}

function file(
  app: Awaited<ReturnType<typeof setup>>['app'],
  body: { verb: string; targets: object[] },
  headers = requester,
) {
  return requestDeletion(app, body, headers)
}

/** The plan a dry run gives, nothing created. */
async function dryRun(app: Awaited<ReturnType<typeof setup>>['app'], body: object) {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers: requester,
    payload: { registry: 'local', reason: 'r', ...body, dryRun: true },
  })
  if (res.statusCode !== 200) throw new Error(`no plan: ${res.statusCode} ${res.body}`)
  return res.json().plan
}

async function approve(app: Awaited<ReturnType<typeof setup>>['app'], id: string, headers = approver) {
  return app.inject({
    method: 'POST',
    url: `/v1/deletions/${id}/approvals`,
    headers,
    payload: { decision: 'approve' },
  })
}

async function items(app: Awaited<ReturnType<typeof setup>>['app'], id: string) {
  const res = await app.inject({ url: `/v1/deletions/${id}/items?limit=1000`, headers: admin })
  return res.json().items as {
    digest: string
    tag: string | null
    action: string
    state: string
    outcome: string
    error: string | null
    restoreOutcome: string | null
    restoreNote: string | null
  }[]
}

async function auditOf(app: Awaited<ReturnType<typeof setup>>['app'], id: string) {
  const res = await app.inject({ url: `/v1/audit?deletionId=${id}&limit=500`, headers: admin })
  return res.json().items as { action: string; outcome: string; details: Record<string, unknown> }[]
}

/** Every manifest and every blob of an image or index answers a GET: it pulls completely. */
async function pullsCompletely(
  client: RegistryClient,
  repository: string,
  reference: string,
): Promise<boolean> {
  try {
    const { manifest } = await client.getManifest(repository, reference)
    if (manifest.kind === 'index') {
      for (const child of manifest.manifests)
        if (!(await pullsCompletely(client, repository, child.digest))) return false
      return true
    }
    if (manifest.kind !== 'image') return false
    for (const blob of [manifest.config, ...manifest.layers]) await client.getBlob(repository, blob.digest)
    return true
  } catch {
    return false
  }
}

async function retag(client: RegistryClient, image: PushedImage, tag: string) {
  await client.putManifest(image.repository, tag, image.mediaType, image.bytes)
}

t.test(
  'a tag pushed onto a planned digest while the request awaits approval survives execution, immutable or not',
  async (t) => {
    const { client, app } = await setup(t)
    const image = await pushImage(client, 'payments/api', { tags: ['old'] })
    const bystander = await pushImage(client, 'payments/api', { tags: ['other'] })
    const request = await file(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'old' }],
    })
    t.equal(request.state, 'awaiting_approval')

    // CI tags the same image while the request waits: a release tag (immutable) and another.
    await retag(client, image, 'v9.9.9')
    await retag(client, image, 'candidate')
    t.equal((await approve(app, request.id)).statusCode, 200, 'the approval itself is not refused')

    const done = await waitForState(app, request.id)
    t.equal(done.state, 'partially_failed', 'the request says not everything ran')
    t.equal(done.planChanged, 1)
    t.match(done.summary, /1 item\(s\) not executed because the registry changed/)
    const [item] = await items(app, request.id)
    t.equal(item?.state, 'skipped')
    t.equal(item?.outcome, 'plan_changed')
    t.match(item?.error, /candidate/)
    t.match(item?.error, /v9\.9\.9/)
    for (const tag of ['old', 'v9.9.9', 'candidate'])
      t.ok(await pullsCompletely(client, 'payments/api', tag), `${tag} still pulls`)
    t.ok(await pullsCompletely(client, 'payments/api', 'other'), 'the bystander too')
    t.equal(bystander.tags[0], 'other')
    const skipped = (await auditOf(app, request.id)).find((e) => e.action === 'item.skipped')
    t.equal(skipped?.outcome, 'plan_changed', 'the item that did not run has its own audit event')
  },
)

t.test('an index pushed after planning that uses a planned child still pulls completely', async (t) => {
  const { client, app } = await setup(t)
  const index = await pushIndex(client, 'payments/multi', { tags: ['1.0'] })
  const [shared, other] = index.children
  const request = await file(app, {
    verb: 'delete-image',
    targets: [{ repository: 'payments/multi', tag: '1.0' }],
  })
  t.same(
    request.plan.items.map((i) => i.digest).sort(),
    [index.digest, shared!.digest, other!.digest].sort(),
    'the plan takes the index and both children',
  )

  // A new index, pushed while the request waits, reuses one of the children.
  const newer = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.OciIndex,
      manifests: [
        {
          mediaType: shared!.mediaType,
          digest: shared!.digest,
          size: shared!.size,
          platform: shared!.platform,
        },
      ],
    }),
  )
  await client.putManifest('payments/multi', '2.0', MediaTypes.OciIndex, newer)
  await approve(app, request.id)
  const done = await waitForState(app, request.id)
  t.equal(done.state, 'partially_failed')
  const outcome = new Map((await items(app, request.id)).map((i) => [i.digest, i]))
  t.equal(outcome.get(index.digest)?.state, 'deleted', 'the index the request named is deleted')
  t.equal(outcome.get(other!.digest)?.state, 'deleted', 'so is the child nothing else uses')
  t.equal(outcome.get(shared!.digest)?.outcome, 'plan_changed', 'the shared child is left alone')
  t.match(outcome.get(shared!.digest)?.error, new RegExp(`${sha256(newer)} \\(2\\.0\\)`))
  t.ok(await pullsCompletely(client, 'payments/multi', '2.0'), 'the new index pulls completely')
  t.notOk(await client.headManifest('payments/multi', '1.0'))
})

t.test(
  'a legal hold placed after filing: approving is refused with the reason; nothing is deleted',
  async (t) => {
    const { client, app } = await setup(t)
    await pushImage(client, 'payments/api', { tags: ['x'] })
    const request = await file(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'x' }],
    })
    const hold = await app.inject({
      method: 'POST',
      url: '/v1/legal-holds',
      headers: admin,
      payload: {
        repository: 'payments/**',
        reason: 'litigation 7',
        until: new Date(Date.now() + 3_600_000).toISOString(),
      },
    })
    t.equal(hold.statusCode, 201)
    const refused = await approve(app, request.id)
    t.equal(refused.statusCode, 409)
    t.equal(refused.json().error.code, 'REGENT_HELD')
    t.match(refused.json().error.message, /litigation 7/)
    const view = (await app.inject({ url: `/v1/deletions/${request.id}`, headers: admin })).json()
    t.equal(view.state, 'awaiting_approval', 'the request stays where it was')
    t.ok(await client.headManifest('payments/api', 'x'), 'nothing deleted')
    const refusals = (await auditOf(app, request.id)).filter((e) => e.action === 'deletion.approval_refused')
    t.equal(refusals[0]?.details.code, 'REGENT_HELD', 'the refusal is audited')
  },
)

t.test(
  'a hold placed while a wave runs stops every item whose "DELETE sent" marker was not yet written',
  async (t) => {
    let held: Promise<unknown> | undefined
    const { client, app } = await setup(t, {
      governance: selfService,
      deletions: { waveSize: 3 },
      executionHooks: {
        // The first DELETE of the first wave: its markers are committed; the hold arrives now.
        beforeDelete: async () => {
          held ??= app.inject({
            method: 'POST',
            url: '/v1/legal-holds',
            headers: admin,
            payload: {
              repository: 'payments/api',
              reason: 'incident 9',
              until: new Date(Date.now() + 3_600_000).toISOString(),
            },
          })
          await held
        },
      },
    })
    const images: PushedImage[] = []
    for (let i = 0; i < 7; i++)
      images.push(await pushImage(client, 'payments/api', { tags: [`t${i}`], layers: 1 }))
    const request = await file(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tagPattern: 't*' }],
    })
    const done = await waitForState(app, request.id)
    t.equal(((await held) as { statusCode: number }).statusCode, 201, 'the hold was placed mid-wave')
    const outcomes = await items(app, request.id)
    const deleted = outcomes.filter((i) => i.state === 'deleted')
    const stopped = outcomes.filter((i) => i.outcome === 'plan_changed')
    t.equal(deleted.length, 3, 'the wave whose markers were committed before the hold went out')
    t.equal(stopped.length, 4, 'every later item stopped')
    for (const item of stopped) {
      t.match(item.error, /legal hold .* incident 9/)
      t.ok(await client.headManifest('payments/api', item.digest), `${item.tag} is still there`)
    }
    t.equal(done.state, 'partially_failed')
  },
)

t.test(
  'restore after the tag was pushed again: the new image keeps the tag, tag_taken is reported',
  async (t) => {
    const { client, app } = await setup(t, {
      governance: selfService,
    })
    const old = await pushImage(client, 'payments/api', { tags: ['oops', 'alias'] })
    const request = await file(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'oops' }],
    })
    t.equal((await waitForState(app, request.id)).state, 'succeeded')
    const newer = await pushImage(client, 'payments/api', { tags: ['oops'] })

    const restored = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/restore`,
      headers: admin,
    })
    t.equal(restored.statusCode, 200)
    t.equal(restored.json().state, 'restored')
    t.equal(
      (await client.headManifest('payments/api', 'oops'))?.digest,
      newer.digest,
      'the new image keeps oops',
    )
    t.equal(
      (await client.headManifest('payments/api', 'alias'))?.digest,
      old.digest,
      'alias is back on the old image',
    )
    t.ok(await pullsCompletely(client, 'payments/api', old.digest), 'the old image is back by digest')
    const [item] = await items(app, request.id)
    t.equal(item?.restoreOutcome, 'tag_taken')
    t.match(item?.restoreNote, new RegExp(`oops points at ${newer.digest}`))
    const event = (await auditOf(app, request.id)).find((e) => e.action === 'manifest.restored')
    t.equal(event?.outcome, 'tag_taken')
    t.same(event?.details.tagsTaken, [{ tag: 'oops', digest: newer.digest }])
    t.same(event?.details.tags, ['alias'])
  },
)

t.test(
  'only an admin may force a restore over a tag pushed again; then it is re-pointed, audited',
  async (t) => {
    const { client, app } = await setup(t, {
      governance: selfService,
    })
    const old = await pushImage(client, 'payments/api', { tags: ['oops'] })
    const request = await file(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'oops' }],
    })
    await waitForState(app, request.id)
    await pushImage(client, 'payments/api', { tags: ['oops'] })
    const byApprover = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/restore?force=true`,
      headers: approver,
    })
    t.equal(byApprover.statusCode, 403)
    const forced = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/restore?force=true`,
      headers: admin,
    })
    t.equal(forced.statusCode, 200)
    t.equal((await client.headManifest('payments/api', 'oops'))?.digest, old.digest)
    t.equal((await items(app, request.id))[0]?.restoreOutcome, 'forced')
  },
)

t.test('delete-image of an index whose child has its own tag: the child and its tag survive', async (t) => {
  const { client, app } = await setup(t, {
    governance: selfService,
  })
  const index = await pushIndex(client, 'payments/multi', { tags: ['1.0'] })
  const [tagged, plain] = index.children
  await retag(client, tagged!, '1.0-amd64')
  const plan = await dryRun(app, {
    verb: 'delete-image',
    targets: [{ repository: 'payments/multi', tag: '1.0' }],
  })
  t.same(plan.items.map((i: { digest: string }) => i.digest).sort(), [index.digest, plain!.digest].sort())
  t.equal(plan.kept.length, 1)
  t.equal(plan.kept[0].digest, tagged!.digest)
  t.same(plan.kept[0].tags, ['1.0-amd64'])
  t.match(plan.kept[0].reason, /tags of its own \(1\.0-amd64\)/)

  const request = await file(app, {
    verb: 'delete-image',
    targets: [{ repository: 'payments/multi', tag: '1.0' }],
  })
  t.equal((await waitForState(app, request.id)).state, 'succeeded')
  t.ok(
    await pullsCompletely(client, 'payments/multi', '1.0-amd64'),
    'the tagged child still pulls by its tag',
  )
  t.notOk(await client.headManifest('payments/multi', plain!.digest), 'the untagged child is gone')

  // Naming the child's tag in the same request takes it along.
  const both = await pushIndex(client, 'payments/multi', { tags: ['2.0'] })
  await retag(client, both.children[0]!, '2.0-amd64')
  const named = await dryRun(app, {
    verb: 'delete-image',
    targets: [
      { repository: 'payments/multi', tag: '2.0' },
      { repository: 'payments/multi', tag: '2.0-amd64' },
    ],
  })
  t.equal(named.kept.length, 0, 'a child whose tags are all targets is deleted with its index')
  t.equal(named.items.length, 3)
})

t.test('the plan is deterministic: the same registry state gives the same plan and hash', async (t) => {
  const { client, app } = await setup(t)
  for (let i = 0; i < 30; i++)
    await pushImage(client, 'payments/api', { tags: [`b${i}`, `a${i}`], layers: 1 })
  const hashes = new Set<string>()
  const orders = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const plan = await dryRun(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tagPattern: '*' }],
    })
    hashes.add(plan.hash)
    orders.add(JSON.stringify(plan.items.map((i: { digest: string }) => i.digest)))
  }
  t.equal(hashes.size, 1, 'one hash for three plans')
  t.equal(orders.size, 1, 'items in one order')
})

t.test(
  'one bot token cannot be two approvers; a bot never approves what it filed; refusals are audited',
  async (t) => {
    const { client, app } = await setup(t, {
      governance: {
        teams: [{ name: 'payments', repositories: [{ pattern: 'payments/**' }] }],
        approvals: { default: { count: 2, from: 'owning-team-approvers' } },
      },
    })
    for (let i = 0; i < 3; i++) await pushImage(client, 'payments/api', { tags: [`old-${i}`], layers: 1 })
    const bot = (sub: string, person: string) => ({
      ...authHeaders({ sub, groups: ['payments'], roles: ['bot', 'requester', 'approver'] }),
      'x-regent-on-behalf-of': person,
    })
    const request = await file(
      app,
      { verb: 'delete-manifest', targets: [{ repository: 'payments/api', tagPattern: 'old-*' }] },
      bot('chatbot', 'bob'),
    )
    t.equal(request.state, 'awaiting_approval')

    const own = await approve(app, request.id, bot('chatbot', 'p1'))
    t.equal(own.statusCode, 403, 'the bot that filed it cannot approve it, whoever it names')
    t.equal(own.json().error.code, 'REGENT_SELF_APPROVAL')

    t.equal((await approve(app, request.id, bot('relay', 'p1'))).statusCode, 200, 'another bot relays p1')
    const second = await approve(app, request.id, bot('relay', 'p2'))
    t.equal(second.statusCode, 403, 'the same token relaying a second invented person does not count')
    t.equal(second.json().error.code, 'REGENT_CREDENTIAL_ALREADY_DECIDED')

    const view = (await app.inject({ url: `/v1/deletions/${request.id}`, headers: admin })).json()
    t.equal(view.state, 'awaiting_approval', 'two approvals are still not satisfied')
    t.equal(view.approvals.missing, 1)
    for (let i = 0; i < 3; i++) t.ok(await client.headManifest('payments/api', `old-${i}`), 'nothing deleted')
    const refusals = (await auditOf(app, request.id)).filter((e) => e.action === 'deletion.approval_refused')
    t.same(refusals.map((e) => e.details.code).sort(), [
      'REGENT_CREDENTIAL_ALREADY_DECIDED',
      'REGENT_SELF_APPROVAL',
    ])

    t.equal((await approve(app, request.id, approver)).statusCode, 200, 'a person makes the second approval')
    t.equal((await waitForState(app, request.id)).state, 'succeeded')
  },
)

t.test('auth.bots limits whom each bot may act for', async (t) => {
  const registry = await withRegistry(t)
  const app = await build(t, {
    config: {
      registries: [registryConfig(registry, { name: 'local' })],
      governance,
      auth: {
        jwtSecret: 'test-secret-0123456789abcdef0123456789abcdef',
        bots: [{ subject: 'chatbot', actFor: ['p*'] }],
      },
    },
  })
  const as = (sub: string, person: string) => ({
    ...authHeaders({ sub, groups: ['payments'], roles: ['bot', 'viewer'] }),
    'x-regent-on-behalf-of': person,
  })
  t.equal((await app.inject({ url: '/v1/me', headers: as('chatbot', 'pia') })).statusCode, 200)
  const outside = await app.inject({ url: '/v1/me', headers: as('chatbot', 'mallory') })
  t.equal(outside.statusCode, 403)
  t.equal(outside.json().error.code, 'REGENT_ON_BEHALF_NOT_ALLOWED')
  const unlisted = await app.inject({ url: '/v1/me', headers: as('otherbot', 'pia') })
  t.equal(unlisted.statusCode, 403, 'a bot not listed may act for nobody')
})

t.test('replan files the changed plan for fresh approval, pointing at the request it replaces', async (t) => {
  const { client, app } = await setup(t)
  const image = await pushImage(client, 'payments/api', { tags: ['old'] })
  const first = await file(app, {
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'old' }],
  })
  await retag(client, image, 'candidate')
  await approve(app, first.id)
  t.equal((await waitForState(app, first.id)).state, 'partially_failed')

  const viewer = authHeaders({ sub: 'vic', groups: ['payments'], roles: ['viewer'] })
  t.equal(
    (await app.inject({ method: 'POST', url: `/v1/deletions/${first.id}/replan`, headers: viewer }))
      .statusCode,
    403,
    'only the requester or an admin files it again',
  )
  const replanned = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${first.id}/replan`,
    headers: requester,
  })
  t.equal(replanned.statusCode, 201)
  const second = replanned.json()
  t.equal(second.replanOf, first.id)
  t.equal(second.state, 'awaiting_approval', 'the changed plan needs its own approval')
  t.same(second.plan.items[0].vanishingTags, ['candidate', 'old'], 'and says every tag that goes now')
  t.not(second.planHash, first.planHash)
  t.ok(
    (await auditOf(app, first.id)).some(
      (e) => e.action === 'deletion.replanned' && e.details.replacedBy === second.id,
    ),
  )

  // Before approval, filing again cancels the waiting request.
  const third = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${second.id}/replan`,
    headers: requester,
  })
  t.equal(third.statusCode, 201)
  const old = (await app.inject({ url: `/v1/deletions/${second.id}`, headers: admin })).json()
  t.equal(old.state, 'cancelled')
})

t.test(
  'a dangling tag is visible when browsing and untag removes it; the other tags still resolve',
  async (t) => {
    const { registry, client, app } = await setup(t, {
      governance: selfService,
    })
    const broken = await pushImage(client, 'payments/api', { tags: ['broken'] })
    await pushImage(client, 'payments/api', { tags: ['fine'] })
    // What distribution leaves when a delete fails half-way: the manifest's revision is gone, the tag
    // that pointed at it is still listed.
    const { rm } = await import('node:fs/promises')
    await rm(
      `${registry.storageDir}/docker/registry/v2/repositories/payments/api/_manifests/revisions/sha256/${broken.digest.slice(7)}`,
      { recursive: true },
    )
    t.notOk(await client.headManifest('payments/api', 'broken'), 'the tag resolves to nothing')

    const page = await app.inject({
      url: '/v1/registries/local/repositories/payments%2Fapi/tags',
      headers: admin,
    })
    t.same(page.json().dangling, ['broken'])
    t.same(
      page.json().items.map((i: { name: string }) => i.name),
      ['fine'],
    )

    const refused = await app.inject({
      method: 'POST',
      url: '/v1/deletions',
      headers: requester,
      payload: {
        registry: 'local',
        verb: 'delete-manifest',
        reason: 'r',
        targets: [{ repository: 'payments/api', tag: 'broken' }],
      },
    })
    t.equal(refused.statusCode, 404)
    t.match(refused.json().error.message, /dangling tag.*untag removes it/)

    const request = await file(app, {
      verb: 'untag',
      targets: [{ repository: 'payments/api', tag: 'broken' }],
    })
    t.equal(request.plan.items.length, 1)
    const done = await waitForState(app, request.id)
    t.equal(done.state, 'succeeded')
    const listed: string[] = []
    for await (const tag of client.tags('payments/api')) listed.push(tag)
    t.same(listed, ['fine'], 'the dangling tag is gone from the listing')
    t.ok(await pullsCompletely(client, 'payments/api', 'fine'))
    const after = await app.inject({
      url: '/v1/registries/local/repositories/payments%2Fapi/tags',
      headers: admin,
    })
    t.same(after.json().dangling, [])
  },
)

t.test(
  'the summary view leaves the items out but says the same; items are paged with their outcomes',
  async (t) => {
    const { client, app } = await setup(t, { governance: selfService })
    for (let i = 0; i < 5; i++)
      await pushImage(client, 'payments/api', { tags: [`s${i}`, `alias-${i}`], layers: 1 })
    const request = await file(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tagPattern: 's*' }],
    })
    await waitForState(app, request.id)
    const full = (await app.inject({ url: `/v1/deletions/${request.id}`, headers: admin })).json()
    const light = (
      await app.inject({ url: `/v1/deletions/${request.id}?view=summary`, headers: admin })
    ).json()
    t.equal(full.view, 'full')
    t.equal(full.plan.items.length, 5)
    t.equal(light.view, 'summary')
    t.same(light.plan.items, [])
    t.equal(light.summary, full.summary, 'the same one-line summary: 5 items, 10 tags')
    t.match(light.summary, /5 item\(s\), 10 tag\(s\)/)
    t.same(light.progress, full.progress)
    t.equal(light.plan.bytesFreed, full.plan.bytesFreed)

    const first = (
      await app.inject({ url: `/v1/deletions/${request.id}/items?limit=2`, headers: admin })
    ).json()
    t.equal(first.items.length, 2)
    const rest = (
      await app.inject({
        url: `/v1/deletions/${request.id}/items?limit=10&cursor=${first.nextCursor}`,
        headers: admin,
      })
    ).json()
    t.same(
      [...first.items, ...rest.items].map((i: { position: number }) => i.position),
      [0, 1, 2, 3, 4],
    )
    t.equal(rest.nextCursor, null)
    t.ok(rest.items.every((i: { outcome: string }) => i.outcome === 'deleted'))
    const graph = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: admin,
      payload: {
        query: `{ deletion(id: "${request.id}", view: "summary") { view summary plan { items { digest } } items(first: 10) { nodes { position outcome } } } }`,
      },
    })
    t.equal(graph.json().data.deletion.view, 'summary')
    t.equal(graph.json().data.deletion.items.nodes.length, 5)
  },
)
