import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build, createTestDatabase } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { fastJobs, waitForState } from './support.js'

// What a user interface needs besides the request itself: the caller's approval inbox, the
// per-item outcomes, and what the caller may do now.

const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }] },
    { name: 'search', repositories: [{ pattern: 'search/**' }] },
  ],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
}
const rita = authHeaders({ sub: 'rita', groups: ['payments'], roles: ['requester', 'approver'] })
const arno = authHeaders({ sub: 'arno', groups: ['payments'], roles: ['approver'] })
const sue = authHeaders({ sub: 'sue', groups: ['search'], roles: ['approver'] })
const vic = authHeaders({ sub: 'vic', groups: ['payments'], roles: ['viewer'] })
const root = authHeaders({ sub: 'root', roles: ['admin'] })

const registry = await withRegistry(t)
const client = new RegistryClient(registryConfig(registry))
t.teardown(() => client.close())
for (const tag of ['a', 'b', 'c', 'd', 'keep'])
  await pushImage(client, 'payments/api', { tags: [tag], layers: 1 })
const databaseUrl = await createTestDatabase(t)
const app = await build(t, {
  databaseUrl,
  config: {
    registries: [registryConfig(registry, { name: 'local' })],
    governance,
    worker: true,
    jobs: fastJobs,
  },
})

async function file(tag: string, headers = rita): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers,
    payload: {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag }],
      reason: 'test',
    },
  })
  if (res.statusCode !== 201) throw new Error(`${res.statusCode} ${res.body}`)
  return res.json().id
}

async function inbox(headers: Record<string, string>, query = ''): Promise<string[]> {
  const res = await app.inject({ url: `/v1/deletions?awaitingMyApproval=true${query}`, headers })
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
  return res.json().items.map((d: { id: string }) => d.id)
}

async function decide(id: string, headers: Record<string, string>, decision: 'approve' | 'reject') {
  const res = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${id}/approvals`,
    headers,
    payload: { decision },
  })
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
}

const actions = async (app_: FastifyInstance, id: string, headers: Record<string, string>) =>
  (await app_.inject({ url: `/v1/deletions/${id}/actions`, headers })).json()

t.test(
  'the inbox holds what the caller may approve now, never their own requests, newest first',
  async (t) => {
    const first = await file('a')
    const second = await file('b')
    const third = await file('c')

    t.same(await inbox(arno), [third, second, first], 'an approver of the owning team, newest first')
    t.same(await inbox(root), [third, second, first], 'an admin')
    t.same(await inbox(rita), [], 'not the requester, though she is an approver of the team')
    t.same(await inbox(sue), [], 'not an approver of another team')
    t.same(await inbox(vic), [], 'not a viewer')

    const page1 = await app.inject({ url: '/v1/deletions?awaitingMyApproval=true&limit=2', headers: arno })
    const page2 = await app.inject({
      url: `/v1/deletions?awaitingMyApproval=true&limit=2&cursor=${encodeURIComponent(page1.json().nextCursor)}`,
      headers: arno,
    })
    t.same(
      [...page1.json().items, ...page2.json().items].map((d: { id: string }) => d.id),
      [third, second, first],
      'pages follow on',
    )
    t.equal(page2.json().nextCursor, null)

    const graphql = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: arno,
      payload: { query: '{ deletions(awaitingMyApproval: true) { nodes { id } } }' },
    })
    t.same(
      graphql.json().data.deletions.nodes.map((d: { id: string }) => d.id),
      [third, second, first],
      'GraphQL has the same filter',
    )

    await decide(third, arno, 'reject')
    t.same(await inbox(arno), [second, first], 'a decided request leaves the inbox')

    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    await db.query(
      `UPDATE deletion_requests SET expires_at = now() - interval '1 minute' WHERE id = $1::uuid`,
      [first],
    )
    await db.end()
    t.same(await inbox(arno), [second], 'an expired request is no longer awaiting anyone')
    t.same(await inbox(arno, '&state=succeeded'), [], 'only awaiting requests are in an inbox')

    await decide(second, arno, 'reject')
  },
)

t.test('actions say what the caller may do now, by the rules the actions enforce', async (t) => {
  const id = await file('d')
  const asRita = await actions(app, id, rita)
  t.same(asRita.approve, {
    allowed: false,
    reason: 'you requested this deletion: someone else must approve it',
  })
  t.same(asRita.cancel, { allowed: true, reason: null }, 'the requester may cancel')
  const asArno = await actions(app, id, arno)
  t.same(asArno.approve, { allowed: true, reason: null })
  t.same(asArno.cancel, { allowed: false, reason: 'only the requester or an admin may cancel a request' })
  t.same(asArno.retry.allowed, false)
  t.same((await actions(app, id, vic)).approve, {
    allowed: false,
    reason: 'approving needs the approver role',
  })
  const stranger = await app.inject({ url: `/v1/deletions/${id}/actions`, headers: sue })
  t.equal(stranger.statusCode, 404, 'a request the caller may not see is not found')

  t.same((await app.inject({ url: `/v1/deletions/${id}/items`, headers: arno })).json(), {
    items: [],
    nextCursor: null,
  })
  await decide(id, arno, 'approve')
  t.same((await actions(app, id, arno)).approve, {
    allowed: false,
    reason: 'the request is queued',
  })
  await waitForState(app, id)

  const items = (await app.inject({ url: `/v1/deletions/${id}/items`, headers: vic })).json().items
  t.equal(items.length, 1)
  t.match(items[0], {
    position: 0,
    repository: 'payments/api',
    tag: 'd',
    state: 'deleted',
    outcome: 'deleted',
    error: null,
    restorable: true,
    restoreOutcome: null,
  })
  t.ok(items[0].deleteIssuedAt && items[0].finishedAt, 'when the DELETE left and when the item ended')
  const after = await actions(app, id, arno)
  t.same(after.restore, { allowed: true, reason: null }, 'an approver of the owning team may restore')
  t.same(after.retry, { allowed: false, reason: 'only the requester or an admin may retry a request' })
  t.same((await actions(app, id, rita)).retry, {
    allowed: false,
    reason: 'a succeeded request cannot be retried',
  })
  t.same((await actions(app, id, vic)).restore, {
    allowed: false,
    reason: 'restoring needs an admin or an approver of the owning team',
  })
  const strangerItems = await app.inject({ url: `/v1/deletions/${id}/items`, headers: sue })
  t.equal(strangerItems.statusCode, 404)
  const failedOnly = await app.inject({ url: `/v1/deletions/${id}/items?state=failed`, headers: vic })
  t.same(failedOnly.json(), { items: [], nextCursor: null }, 'items filter by state')

  const restored = await app.inject({ method: 'POST', url: `/v1/deletions/${id}/restore`, headers: arno })
  t.equal(restored.statusCode, 200, restored.body)
  const afterRestore = (await app.inject({ url: `/v1/deletions/${id}/items`, headers: vic })).json().items
  t.equal(afterRestore[0].restoreOutcome, 'restored')
  t.same((await actions(app, id, arno)).restore, {
    allowed: false,
    reason: 'a restored request cannot be restored',
  })
})
