import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build } from '../helper.js'
import { pushImage, pushIndex } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
    { name: 'search', repositories: [{ pattern: 'search/**' }] },
  ],
  protections: [
    { repositories: 'search/**', tags: ['latest'], level: 'immutable', reason: 'what production pulls' },
    { repositories: 'payments/**', tags: ['prod-*'], level: 'admin-only' },
  ],
  approvals: {
    default: { count: 1, from: 'owning-team-approvers' },
    rules: [{ when: { minItems: 3 }, count: 2, from: 'owning-team-approvers' }],
  },
}

const alice = authHeaders({ sub: 'alice', groups: ['search'], roles: ['requester'] })
const paula = authHeaders({ sub: 'paula', groups: ['payments'], roles: ['requester'] })
const sam = authHeaders({ sub: 'sam', groups: ['search'], roles: ['approver'] })
const sue = authHeaders({ sub: 'sue', groups: ['search'], roles: ['approver'] })
const admin = authHeaders({ sub: 'root', roles: ['admin'] })

async function setup(t: Test, options: { deleteEnabled?: boolean } = {}) {
  const registry = await withRegistry(t, options)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const app = await build(t, {
    // Introspection on: one test reads the schema to compare the graph with the REST routes.
    config: {
      registries: [registryConfig(registry, { name: 'local' })],
      governance,
      graphql: { introspection: true },
    },
  })
  return { registry, client, app }
}

const post = (
  app: FastifyInstance,
  headers: Record<string, string>,
  body: object,
  extra: Record<string, string> = {},
) => app.inject({ method: 'POST', url: '/v1/deletions', headers: { ...headers, ...extra }, payload: body })

async function auditActions(app: FastifyInstance): Promise<string[]> {
  const res = await app.inject({ url: '/v1/audit?limit=500', headers: admin })
  return res.json().items.map((e: { action: string }) => e.action)
}

t.test(
  'a delete-manifest plan lists every sibling tag; an immutable sibling refuses the request',
  async (t) => {
    const { client, app } = await setup(t)
    const image = await pushImage(client, 'search/api', { tags: ['v1', 'latest'] })
    await pushImage(client, 'search/api', { tags: ['v2'] })

    const dry = await post(app, alice, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'v1' }],
      reason: 'cleanup',
      dryRun: true,
    })
    t.equal(dry.statusCode, 200)
    const plan = dry.json().plan
    t.equal(plan.items.length, 1)
    t.equal(plan.items[0].digest, image.digest)
    t.same(plan.items[0].vanishingTags, ['latest', 'v1'], 'latest vanishes with v1')
    t.equal(plan.items[0].protection.level, 'immutable')
    t.match(plan.problems[0], { code: 'REGENT_PROTECTED', message: /search\/api:latest is immutable/ })

    const real = await post(app, alice, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'v1' }],
      reason: 'cleanup',
    })
    t.equal(real.statusCode, 409)
    t.equal(real.json().error.code, 'REGENT_PROTECTED')
    t.match(real.json().error.message, /latest/)
    const list = await app.inject({ url: '/v1/deletions', headers: admin })
    t.same(list.json().items, [], 'nothing was saved')
    t.ok((await auditActions(app)).includes('deletion.refused'), 'the refusal is audited')
  },
)

t.test(
  'untag picks the placeholder method on distribution 2.8; with deletes disabled it is impossible',
  async (t) => {
    const { client, app } = await setup(t)
    await pushImage(client, 'payments/api', { tags: ['a', 'b'] })
    const dry = await post(app, paula, {
      registry: 'local',
      verb: 'untag',
      targets: [{ repository: 'payments/api', tag: 'a' }],
      reason: 'r',
      dryRun: true,
    })
    t.equal(dry.json().plan.items[0].untagMethod, 'placeholder')
    t.same(dry.json().plan.items[0].vanishingTags, ['a'], 'untag removes only the tag named')
    t.same(dry.json().plan.problems, [])

    const off = await setup(t, { deleteEnabled: false })
    await pushImage(off.client, 'payments/api', { tags: ['a'] })
    const impossible = await post(off.app, paula, {
      registry: 'local',
      verb: 'untag',
      targets: [{ repository: 'payments/api', tag: 'a' }],
      reason: 'r',
      dryRun: true,
    })
    t.equal(impossible.json().plan.items[0].untagMethod, 'impossible')
    t.equal(impossible.json().plan.problems[0].code, 'REGENT_UNTAG_IMPOSSIBLE')
    const refused = await post(off.app, paula, {
      registry: 'local',
      verb: 'untag',
      targets: [{ repository: 'payments/api', tag: 'a' }],
      reason: 'r',
    })
    t.equal(refused.statusCode, 409)
    t.equal(refused.json().error.code, 'REGENT_UNTAG_IMPOSSIBLE')
  },
)

t.test(
  'deleting one child of an index that still uses it is refused; delete-image takes the children',
  async (t) => {
    const { client, app } = await setup(t)
    const index = await pushIndex(client, 'payments/multi', { tags: ['1.0'] })
    const child = index.children[0]!
    const res = await post(app, paula, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/multi', digest: child.digest }],
      reason: 'r',
    })
    t.equal(res.statusCode, 409)
    t.equal(res.json().error.code, 'REGENT_INDEX_CHILD_IN_USE')
    t.match(res.json().error.message, new RegExp(index.digest))

    const image = await post(app, paula, {
      registry: 'local',
      verb: 'delete-image',
      targets: [{ repository: 'payments/multi', tag: '1.0' }],
      reason: 'r',
      dryRun: true,
    })
    const items = image.json().plan.items
    t.same(
      items.map((i: { action: string; digest: string }) => [i.action, i.digest]),
      [['delete-manifest', index.digest], ...index.children.map((c) => ['delete-child', c.digest])],
    )
    const blobs = index.children.reduce(
      (sum, c) => sum + c.config.size + c.layers.reduce((s, l) => s + l.size, 0),
      0,
    )
    t.equal(image.json().plan.bytesFreed, blobs, 'bytes freed: every blob of both platforms')
  },
)

t.test('a team that does not own the repository gets 403, an audit event and no request', async (t) => {
  const { client, app } = await setup(t)
  await pushImage(client, 'search/api', { tags: ['old'] })
  const res = await post(app, paula, {
    registry: 'local',
    verb: 'delete-manifest',
    targets: [{ repository: 'search/api', tag: 'old' }],
    reason: 'r',
  })
  t.equal(res.statusCode, 403)
  t.equal(res.json().error.code, 'REGENT_REQUESTER_NOT_ELIGIBLE')
  t.same((await app.inject({ url: '/v1/deletions', headers: admin })).json().items, [])
  const audit = await app.inject({ url: '/v1/audit?action=deletion.denied', headers: admin })
  t.equal(audit.json().items.length, 1)
  t.equal(audit.json().items[0].actorSubject, 'paula')
  const viewerOnly = await post(app, authHeaders({ sub: 'v', groups: ['search'], roles: ['viewer'] }), {
    registry: 'local',
    verb: 'delete-manifest',
    targets: [{ repository: 'search/api', tag: 'old' }],
    reason: 'r',
  })
  t.equal(viewerOnly.statusCode, 403, 'a viewer cannot request')
})

t.test(
  'rules decide approvals: none for a team configured so, an admin for admin-only, two above the item count',
  async (t) => {
    const { client, app } = await setup(t)
    await pushImage(client, 'payments/api', { tags: ['small'] })
    await pushImage(client, 'payments/api', { tags: ['prod-1'] })
    for (const tag of ['s1', 's2', 's3', 's4']) await pushImage(client, 'search/api', { tags: [tag] })

    const small = await post(app, paula, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'small' }],
      reason: 'r',
    })
    t.equal(small.statusCode, 201)
    // Approved at once, and queued for execution in the same transaction.
    t.equal(small.json().state, 'queued', 'payments needs no approval for its own small request')
    t.ok(small.json().jobId, 'its execution job exists')

    const prod = await post(app, paula, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'prod-1' }],
      reason: 'r',
    })
    t.equal(prod.json().state, 'awaiting_approval')
    t.equal(prod.json().approvals.required.adminCount, 1)
    const teamApprover = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${prod.json().id}/approvals`,
      headers: authHeaders({ sub: 'pete', groups: ['payments'], roles: ['approver'] }),
      payload: { decision: 'approve' },
    })
    t.equal(teamApprover.statusCode, 403)
    t.equal(teamApprover.json().error.code, 'REGENT_APPROVER_NOT_ELIGIBLE')
    const byAdmin = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${prod.json().id}/approvals`,
      headers: admin,
      payload: { decision: 'approve', planHash: prod.json().planHash },
    })
    t.equal(byAdmin.json().state, 'queued', 'approved by the admin, and queued')

    const big = await post(app, alice, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: ['s1', 's2', 's3'].map((tag) => ({ repository: 'search/api', tag })),
      reason: 'r',
    })
    t.equal(big.json().approvals.required.count, 2)
    const id = big.json().id
    const self = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${id}/approvals`,
      headers: authHeaders({ sub: 'alice', groups: ['search'], roles: ['approver', 'requester'] }),
      payload: { decision: 'approve' },
    })
    t.equal(self.statusCode, 403)
    t.equal(self.json().error.code, 'REGENT_SELF_APPROVAL')
    const first = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${id}/approvals`,
      headers: sam,
      payload: { decision: 'approve' },
    })
    t.equal(first.json().state, 'awaiting_approval', 'one approval is not enough')
    t.equal(first.json().approvals.missing, 1)
    const again = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${id}/approvals`,
      headers: sam,
      payload: { decision: 'approve' },
    })
    t.equal(again.statusCode, 409, 'the same approver cannot count twice')
    const second = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${id}/approvals`,
      headers: sue,
      payload: { decision: 'approve' },
    })
    t.equal(second.json().state, 'queued', 'the second approval approves it')
    const late = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${id}/approvals`,
      headers: admin,
      payload: { decision: 'reject' },
    })
    t.equal(late.statusCode, 409)
    t.equal(late.json().error.code, 'REGENT_ILLEGAL_TRANSITION')

    const actions = await auditActions(app)
    for (const action of [
      'deletion.requested',
      'deletion.approval_refused',
      'deletion.approval_given',
      'deletion.approved',
    ]) {
      t.ok(actions.includes(action), `${action} is audited`)
    }
  },
)

t.test('rejection, cancellation and a plan hash that does not match', async (t) => {
  const { client, app } = await setup(t)
  for (const tag of ['r1', 'r2']) await pushImage(client, 'search/api', { tags: [tag] })
  const one = (
    await post(app, alice, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'r1' }],
      reason: 'r',
    })
  ).json()
  const wrongHash = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${one.id}/approvals`,
    headers: sam,
    payload: { decision: 'approve', planHash: 'f'.repeat(64) },
  })
  t.equal(wrongHash.json().error.code, 'REGENT_PLAN_CHANGED')
  const rejected = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${one.id}/approvals`,
    headers: sam,
    payload: { decision: 'reject', comment: 'still used' },
  })
  t.equal(rejected.json().state, 'rejected')

  const two = (
    await post(app, alice, {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'r2' }],
      reason: 'r',
    })
  ).json()
  const notMine = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${two.id}/cancel`,
    headers: sam,
    payload: {},
  })
  t.equal(notMine.statusCode, 403)
  const cancelled = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${two.id}/cancel`,
    headers: alice,
    payload: { reason: 'changed my mind' },
  })
  t.equal(cancelled.json().state, 'cancelled')
  const twice = await app.inject({
    method: 'POST',
    url: `/v1/deletions/${two.id}/cancel`,
    headers: alice,
    payload: {},
  })
  t.equal(twice.statusCode, 409)
  t.equal(twice.json().error.code, 'REGENT_ILLEGAL_TRANSITION')
})

t.test('fifty concurrent identical POSTs with one Idempotency-Key create exactly one request', async (t) => {
  const { client, app } = await setup(t)
  await pushImage(client, 'search/api', { tags: ['dup'] })
  const body = {
    registry: 'local',
    verb: 'delete-manifest',
    targets: [{ repository: 'search/api', tag: 'dup' }],
    reason: 'r',
  }
  const results = await Promise.all(
    Array.from({ length: 50 }, () => post(app, alice, body, { 'idempotency-key': 'k-123' })),
  )
  const ids = new Set(results.map((r) => r.json().id))
  t.equal(ids.size, 1, 'every caller got the same request')
  t.same(results.map((r) => r.statusCode).filter((s) => s === 201).length, 1, 'exactly one was created')
  t.ok(results.every((r) => r.statusCode === 201 || r.statusCode === 200))
  const all = await app.inject({ url: '/v1/deletions', headers: admin })
  t.equal(all.json().items.length, 1)
  const requested = await app.inject({ url: '/v1/audit?action=deletion.requested', headers: admin })
  t.equal(requested.json().items.length, 1, 'one requested event')

  const other = await post(app, alice, { ...body, reason: 'different' }, { 'idempotency-key': 'k-123' })
  t.equal(other.statusCode, 409)
  t.equal(other.json().error.code, 'REGENT_IDEMPOTENCY_CONFLICT')
})

t.test('a legal hold blocks everyone, admins too, until it is lifted', async (t) => {
  const { client, app } = await setup(t)
  await pushImage(client, 'payments/api', { tags: ['held'] })
  const until = new Date(Date.now() + 3_600_000).toISOString()
  const notAdmin = await app.inject({
    method: 'POST',
    url: '/v1/legal-holds',
    headers: paula,
    payload: { repository: 'payments/**', reason: 'audit', until },
  })
  t.equal(notAdmin.statusCode, 403)
  const hold = await app.inject({
    method: 'POST',
    url: '/v1/legal-holds',
    headers: admin,
    payload: { repository: 'payments/**', reason: 'litigation 42', until },
  })
  t.equal(hold.statusCode, 201)
  const body = {
    registry: 'local',
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'held' }],
    reason: 'r',
  }
  for (const who of [paula, admin]) {
    const res = await post(app, who, body)
    t.equal(res.statusCode, 409)
    t.equal(res.json().error.code, 'REGENT_HELD')
    t.match(res.json().error.message, /litigation 42/)
  }
  const lifted = await app.inject({
    method: 'POST',
    url: `/v1/legal-holds/${hold.json().id}/lift`,
    headers: admin,
  })
  t.equal(lifted.json().active, false)
  t.equal((await post(app, paula, body)).statusCode, 201)
  const actions = await auditActions(app)
  t.ok(actions.includes('legal_hold.placed') && actions.includes('legal_hold.lifted'))
})

t.test(
  'audited actions leave a chain that verifies; viewers read only their teams\u2019 repositories',
  async (t) => {
    const { client, app } = await setup(t)
    await pushImage(client, 'search/api', { tags: ['x'] })
    await Promise.all(
      Array.from({ length: 25 }, () =>
        post(app, paula, {
          registry: 'local',
          verb: 'delete-manifest',
          targets: [{ repository: 'search/api', tag: 'x' }],
          reason: 'r',
        }),
      ),
    )
    const verify = await app.inject({ url: '/v1/audit/verify', headers: admin })
    t.equal(verify.json().ok, true)
    t.equal(verify.json().checked, 25)
    t.equal((await app.inject({ url: '/v1/audit/verify', headers: alice })).statusCode, 403)

    const viewer = authHeaders({ sub: 'vic', groups: ['search'], roles: ['viewer'] })
    t.equal((await app.inject({ url: '/v1/audit', headers: viewer })).statusCode, 403, 'not the whole log')
    const own = await app.inject({ url: '/v1/audit?registry=local&repository=search/api', headers: viewer })
    t.equal(own.statusCode, 200)
    t.equal(own.json().items.length, 25)
    t.equal(
      (await app.inject({ url: '/v1/audit?registry=local&repository=payments/api', headers: viewer }))
        .statusCode,
      403,
    )

    const exported = await app.inject({
      url: '/v1/audit/export?registry=local&repository=search/api',
      headers: viewer,
    })
    t.match(exported.headers['content-type'], /application\/x-ndjson/)
    const lines = exported.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    t.equal(lines.length, 25)
    t.ok(
      lines.every((e, i) => i === 0 || e.seq > lines[i - 1].seq),
      'oldest first',
    )
  },
)

t.test('bad input gets a 400 and changes nothing', async (t) => {
  const { app } = await setup(t)
  const cases = [
    { registry: 'local', verb: 'delete-manifest', targets: [{ repository: 'search/api' }], reason: 'r' },
    {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'a', digest: `sha256:${'0'.repeat(64)}` }],
      reason: 'r',
    },
    {
      registry: 'local',
      verb: 'untag',
      targets: [{ repository: 'search/api', digest: `sha256:${'0'.repeat(64)}` }],
      reason: 'r',
    },
    {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'search/api', tag: 'a' }],
      reason: '   ',
    },
    { registry: 'local', verb: 'purge', targets: [{ repository: 'search/api', tag: 'a' }], reason: 'r' },
    {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository: 'Search/API', tag: 'a' }],
      reason: 'r',
    },
  ]
  for (const body of cases) {
    const res = await post(app, alice, body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
  }
  t.equal((await app.inject({ url: '/v1/deletions/not-a-uuid', headers: admin })).statusCode, 400)
  t.equal(
    (await app.inject({ url: '/v1/deletions/00000000-0000-0000-0000-000000000000', headers: admin }))
      .statusCode,
    404,
  )
  t.same((await app.inject({ url: '/v1/deletions', headers: admin })).json().items, [])
})

t.test('GraphQL: the same plan, request, approval, holds and audit as REST', async (t) => {
  const { client, app } = await setup(t)
  const image = await pushImage(client, 'search/api', { tags: ['g1', 'g1-alias'] })
  const gql = async (headers: Record<string, string>, query: string, variables: object = {}) =>
    (await app.inject({ method: 'POST', url: '/graphql', headers, payload: { query, variables } })).json()
  const input = {
    registry: 'local',
    verb: 'delete-manifest',
    targets: [{ repository: 'search/api', tag: 'g1' }],
    reason: 'gql',
  }

  const planned = await gql(
    alice,
    'mutation ($input: DeletionInput!) { planDeletion(input: $input) { hash items { digest vanishingTags } approvals { count } } }',
    { input },
  )
  t.equal(planned.data.planDeletion.items[0].digest, image.digest)
  t.same(planned.data.planDeletion.items[0].vanishingTags, ['g1', 'g1-alias'])

  const created = await gql(
    alice,
    'mutation ($input: DeletionInput!) { createDeletion(input: $input, idempotencyKey: "g") { created deletion { id state planHash summary } } }',
    { input },
  )
  const deletion = created.data.createDeletion.deletion
  t.equal(created.data.createDeletion.created, true)
  t.equal(deletion.state, 'awaiting_approval')
  t.equal(deletion.planHash, planned.data.planDeletion.hash, 'a dry run and the request share one resolver')

  const self = await gql(
    alice,
    'mutation ($id: ID!) { decideDeletion(id: $id, decision: approve) { state } }',
    { id: deletion.id },
  )
  t.equal(self.errors[0].extensions.code, 'REGENT_SELF_APPROVAL')
  const approved = await gql(
    sam,
    'mutation ($id: ID!, $h: String) { decideDeletion(id: $id, decision: approve, planHash: $h) { state approvals { given { approver as } } } }',
    { id: deletion.id, h: deletion.planHash },
  )
  t.equal(approved.data.decideDeletion.state, 'queued')
  t.same(approved.data.decideDeletion.approvals.given, [{ approver: 'sam', as: 'owning-team-approver' }])

  const listed = await gql(admin, '{ deletions(state: "queued") { nodes { id } pageInfo { hasNextPage } } }')
  t.same(listed.data.deletions.nodes, [{ id: deletion.id }])

  const hold = await gql(
    admin,
    'mutation ($u: String!) { placeLegalHold(input: { repository: "search/**", reason: "x", until: $u }) { id active } }',
    {
      u: new Date(Date.now() + 60_000).toISOString(),
    },
  )
  t.equal(hold.data.placeLegalHold.active, true)
  const holds = await gql(viewerOf('search'), '{ legalHolds { id } }')
  t.same(holds.data.legalHolds, [{ id: hold.data.placeLegalHold.id }])

  const events = await gql(
    admin,
    '{ auditEvents(first: 100) { nodes { action actorSubject deletionId } } auditVerification { ok checked } }',
  )
  const actions = events.data.auditEvents.nodes.map((e: { action: string }) => e.action)
  for (const action of [
    'deletion.requested',
    'deletion.approval_refused',
    'deletion.approval_given',
    'deletion.approved',
    'legal_hold.placed',
  ]) {
    t.ok(actions.includes(action), action)
  }
  t.equal(events.data.auditVerification.ok, true)
})

t.test('every REST route of this part is in openapi.yaml and has a GraphQL counterpart', async (t) => {
  const { app } = await setup(t)
  const spec = (await app.inject({ url: '/openapi.json' })).json()
  const routes: Record<string, string> = {
    'post /v1/deletions': 'createDeletion',
    'get /v1/deletions': 'deletions',
    'get /v1/deletions/{id}': 'deletion',
    'post /v1/deletions/{id}/approvals': 'decideDeletion',
    'post /v1/deletions/{id}/cancel': 'cancelDeletion',
    'post /v1/legal-holds': 'placeLegalHold',
    'get /v1/legal-holds': 'legalHolds',
    'post /v1/legal-holds/{id}/lift': 'liftLegalHold',
    'get /v1/audit': 'auditEvents',
    'get /v1/audit/export': 'auditEvents',
    'get /v1/audit/verify': 'auditVerification',
  }
  const gqlFields = await app.inject({
    method: 'POST',
    url: '/graphql',
    headers: admin,
    payload: { query: '{ __schema { queryType { fields { name } } mutationType { fields { name } } } }' },
  })
  const schema = gqlFields.json().data.__schema
  const names = new Set(
    [...schema.queryType.fields, ...schema.mutationType.fields].map((f: { name: string }) => f.name),
  )
  for (const [route, field] of Object.entries(routes)) {
    const [method, path] = route.split(' ') as [string, string]
    t.ok(spec.paths[path]?.[method], `${route} is in the OpenAPI document`)
    t.ok(names.has(field), `${route} has GraphQL ${field}`)
  }
})

function viewerOf(team: string) {
  return authHeaders({ sub: `viewer-${team}`, groups: [team], roles: ['viewer'] })
}
