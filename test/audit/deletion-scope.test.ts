import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

// A team member follows one deletion request through the audit log: its requester, approvals and
// outcome, most of which name no repository. Other teams' requests stay closed to them.

const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }] },
    { name: 'search', repositories: [{ pattern: 'search/**' }] },
  ],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
}
const rita = authHeaders({ sub: 'rita', groups: ['payments'], roles: ['requester'] })
const vic = authHeaders({ sub: 'vic', groups: ['payments'], roles: ['viewer'] })
const sam = authHeaders({ sub: 'sam', groups: ['search'], roles: ['requester'] })

const registry = await withRegistry(t)
const client = new RegistryClient(registryConfig(registry))
t.teardown(() => client.close())
await pushImage(client, 'payments/api', { tags: ['p1'], layers: 1 })
await pushImage(client, 'search/web', { tags: ['s1'], layers: 1 })
const app = await build(t, {
  config: { registries: [registryConfig(registry, { name: 'local' })], governance },
})

async function file(headers: Record<string, string>, repository: string, tag: string): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers,
    payload: { registry: 'local', verb: 'delete-manifest', targets: [{ repository, tag }], reason: 'test' },
  })
  return res.json().id
}
const ours = await file(rita, 'payments/api', 'p1')
const theirs = await file(sam, 'search/web', 's1')

t.test('a viewer reads the audit events of a deletion their team may see, and no other', async (t) => {
  const mine = await app.inject({ url: `/v1/audit?deletionId=${ours}`, headers: vic })
  t.equal(mine.statusCode, 200)
  t.same(
    mine.json().items.map((e: { action: string; actorSubject: string }) => [e.action, e.actorSubject]),
    [['deletion.requested', 'rita']],
  )
  const exported = await app.inject({ url: `/v1/audit/export?deletionId=${ours}`, headers: vic })
  t.equal(exported.statusCode, 200)
  t.equal(exported.body.trim().split('\n').length, 1, 'the export follows the same scope')

  for (const url of [
    `/v1/audit?deletionId=${theirs}`,
    `/v1/audit/export?deletionId=${theirs}`,
    `/v1/audit?deletionId=00000000-0000-4000-8000-000000000000`,
  ]) {
    const res = await app.inject({ url, headers: vic })
    t.equal(res.statusCode, 403, `${url} is refused`)
    t.equal(res.json().error.code, 'REGENT_FORBIDDEN')
  }
  const byRepository = await app.inject({
    url: `/v1/audit?deletionId=${theirs}&registry=local&repository=payments%2Fapi`,
    headers: vic,
  })
  t.same(byRepository.json().items, [], 'naming an own repository does not open another request')

  const graphql = await app.inject({
    method: 'POST',
    url: '/graphql',
    headers: vic,
    payload: { query: `{ auditEvents(deletionId: "${theirs}") { nodes { action } } }` },
  })
  t.equal(graphql.json().errors[0].extensions.code, 'REGENT_FORBIDDEN', 'GraphQL: the same rule')
})
