import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { authHeaders, build } from '../helper.js'

/**
 * One validation for every adapter: each input REST refuses is refused through GraphQL with the
 * same code, the same failing fields and the same messages, and nothing is stored.
 */

const admin = authHeaders({ sub: 'root', groups: ['payments'], roles: ['admin'] })
const ID = '00000000-0000-4000-8000-000000000000'

const deletion = {
  registry: 'local',
  verb: 'delete-manifest',
  targets: [{ repository: 'payments/api', tag: 'v1' }],
  reason: 'cleanup',
}
const policy = {
  name: 'payments-cleanup',
  team: 'payments',
  registry: 'local',
  repositories: ['payments/**'],
  rules: [{ select: { include: ['pr-*'] }, expire: { always: true } }],
}
const hold = { repository: 'payments/**', reason: 'litigation', until: '2999-01-01T00:00:00Z' }

interface Case {
  name: string
  rest: { method: 'POST' | 'PUT'; url: string; payload: object }
  graphql: { query: string; variables: Record<string, unknown> }
}

const deletionCases = (label: string, input: object): Case[] => [
  {
    name: `planDeletion: ${label}`,
    rest: { method: 'POST', url: '/v1/deletions', payload: { ...input, dryRun: true } },
    graphql: {
      query: 'mutation ($input: DeletionInput!) { planDeletion(input: $input) { hash } }',
      variables: { input },
    },
  },
  {
    name: `createDeletion: ${label}`,
    rest: { method: 'POST', url: '/v1/deletions', payload: input },
    graphql: {
      query: 'mutation ($input: DeletionInput!) { createDeletion(input: $input) { created } }',
      variables: { input },
    },
  },
]

const policyCases = (label: string, input: object): Case[] => [
  {
    name: `createRetentionPolicy: ${label}`,
    rest: { method: 'POST', url: '/v1/policies', payload: input },
    graphql: {
      query: 'mutation ($input: JSON!) { createRetentionPolicy(input: $input) { id } }',
      variables: { input },
    },
  },
  {
    name: `updateRetentionPolicy: ${label}`,
    rest: { method: 'PUT', url: `/v1/policies/${ID}`, payload: input },
    graphql: {
      query: 'mutation ($id: ID!, $input: JSON!) { updateRetentionPolicy(id: $id, input: $input) { id } }',
      variables: { id: ID, input },
    },
  },
  {
    name: `previewRetentionPolicy: ${label}`,
    rest: { method: 'POST', url: '/v1/policies/preview', payload: input },
    graphql: {
      query: 'mutation ($input: JSON) { previewRetentionPolicy(input: $input) { summary } }',
      variables: { input },
    },
  },
]

const holdCase = (label: string, input: object): Case => ({
  name: `placeLegalHold: ${label}`,
  rest: { method: 'POST', url: '/v1/legal-holds', payload: input },
  graphql: {
    query: 'mutation ($input: LegalHoldInput!) { placeLegalHold(input: $input) { id } }',
    variables: { input },
  },
})

const cases: Case[] = [
  ...deletionCases('a 2,001-character reason', { ...deletion, reason: 'x'.repeat(2001) }),
  ...deletionCases('a 900 KB reason', { ...deletion, reason: 'x'.repeat(900_000) }),
  ...deletionCases('a 201-character ticket', { ...deletion, ticket: 't'.repeat(201) }),
  ...deletionCases('a blank reason', { ...deletion, reason: '   ' }),
  ...deletionCases('an unknown verb', { ...deletion, verb: 'obliterate' }),
  ...deletionCases('no targets', { ...deletion, targets: [] }),
  ...deletionCases('12,000 targets', {
    ...deletion,
    targets: Array.from({ length: 12_000 }, (_, i) => ({ repository: 'payments/api', tag: `t${i}` })),
  }),
  ...deletionCases('a 256-character repository', {
    ...deletion,
    targets: [{ repository: 'r'.repeat(256), tag: 'v1' }],
  }),
  ...deletionCases('a 129-character tag', {
    ...deletion,
    targets: [{ repository: 'payments/api', tag: 'v'.repeat(129) }],
  }),
  ...deletionCases('a tag pattern that does not compile', {
    ...deletion,
    targets: [{ repository: 'payments/api', tagPattern: '/(/' }],
  }),
  ...deletionCases('a backreference', {
    ...deletion,
    targets: [{ repository: 'payments/api', tagPattern: '/(a)\\1/' }],
  }),
  ...deletionCases('two of tag, digest, tagPattern', {
    ...deletion,
    targets: [{ repository: 'payments/api', tag: 'v1', tagPattern: 'v*' }],
  }),
  {
    name: 'decideDeletion: a 2,001-character comment',
    rest: {
      method: 'POST',
      url: `/v1/deletions/${ID}/approvals`,
      payload: { decision: 'approve', comment: 'c'.repeat(2001) },
    },
    graphql: {
      query:
        'mutation ($id: ID!, $c: String) { decideDeletion(id: $id, decision: approve, comment: $c) { id } }',
      variables: { id: ID, c: 'c'.repeat(2001) },
    },
  },
  {
    name: 'decideDeletion: a plan hash that is not one',
    rest: {
      method: 'POST',
      url: `/v1/deletions/${ID}/approvals`,
      payload: { decision: 'approve', planHash: 'xyz' },
    },
    graphql: {
      query: 'mutation ($id: ID!) { decideDeletion(id: $id, decision: approve, planHash: "xyz") { id } }',
      variables: { id: ID },
    },
  },
  {
    name: 'cancelDeletion: a 2,001-character reason',
    rest: { method: 'POST', url: `/v1/deletions/${ID}/cancel`, payload: { reason: 'r'.repeat(2001) } },
    graphql: {
      query: 'mutation ($id: ID!, $r: String) { cancelDeletion(id: $id, reason: $r) { id } }',
      variables: { id: ID, r: 'r'.repeat(2001) },
    },
  },
  {
    name: 'deletion: an id that is not a uuid',
    rest: { method: 'POST', url: '/v1/deletions/not-a-uuid/cancel', payload: {} },
    graphql: { query: 'mutation { cancelDeletion(id: "not-a-uuid") { id } }', variables: {} },
  },
  ...policyCases('a name with capitals and spaces', { ...policy, name: 'Payments Cleanup' }),
  ...policyCases('no repositories', { ...policy, repositories: [] }),
  ...policyCases('an age that is not one', {
    ...policy,
    rules: [{ expire: { olderThan: { age: '3 days', by: 'push' } } }],
  }),
  ...policyCases('51 rules', { ...policy, rules: Array.from({ length: 51 }, () => policy.rules[0]) }),
  ...policyCases('an unknown mode', { ...policy, mode: 'yolo' }),
  holdCase('a 2,001-character reason', { ...hold, reason: 'r'.repeat(2001) }),
  holdCase('a digest that is not one', { ...hold, digest: 'sha256:xyz' }),
  holdCase('an until that is not a date-time', { ...hold, until: 'tomorrow' }),
  holdCase('a 1,001-character repository glob', { ...hold, repository: 'r'.repeat(1001) }),
]

/** A refusal with its failing fields relative to the input (REST names them body.x, GraphQL input.x). */
function refusal(status: number, code: string | undefined, details: unknown) {
  const fields = ((details as { field: string; message: string }[] | undefined) ?? [])
    .map((d) => `${d.field.replace(/^(body|params|querystring|input)\.?/, '')}: ${d.message}`)
    .sort()
  return { status, code, fields }
}

async function counts(app: FastifyInstance) {
  const { rows } = await app.db.query<{ n: string }>(
    `SELECT (SELECT count(*) FROM deletion_requests) + (SELECT count(*) FROM retention_policies)
          + (SELECT count(*) FROM legal_holds) AS n`,
  )
  return Number(rows[0]!.n)
}

t.test(
  'every input REST refuses is refused identically through GraphQL, and nothing is stored',
  async (t) => {
    const app = await build(t, {
      config: {
        registries: [{ name: 'local', url: 'http://127.0.0.1:1' }],
        governance: { teams: [{ name: 'payments', repositories: [{ pattern: 'payments/**' }] }] },
      },
    })
    const before = await counts(app)
    for (const c of cases) {
      const rest = await app.inject({ ...c.rest, headers: admin })
      const body = rest.json()
      const viaRest = refusal(rest.statusCode, body.error?.code, body.error?.details)
      t.equal(viaRest.status, 400, `${c.name}: REST refuses it (${rest.body.slice(0, 200)})`)
      t.equal(viaRest.code, 'REGENT_VALIDATION', `${c.name}: REST code`)

      const gql = await app.inject({ method: 'POST', url: '/graphql', headers: admin, payload: c.graphql })
      const error = gql.json().errors?.[0]
      const viaGraphql = refusal(gql.statusCode, error?.extensions?.code, error?.extensions?.details)
      t.same(viaGraphql, viaRest, `${c.name}: GraphQL refuses it the same way (${gql.body.slice(0, 200)})`)
    }
    t.equal(await counts(app), before, 'no request, policy or hold was stored')
  },
)
