import { readFileSync } from 'node:fs'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import { parse as parseYaml } from 'yaml'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

/**
 * Every route of openapi.yaml, hit with what an attacker or a broken client sends: NUL bytes,
 * unpaired surrogates and bytes that are not UTF-8, numbers past every bound, tag patterns that
 * do not compile, and bodies that are not the envelope the route takes. Nothing may answer 5xx,
 * and every 4xx names a REGENT_* code.
 */

type Schema = Record<string, unknown>
interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema?: Schema }[]
  requestBody?: { content?: Record<string, { schema?: Schema }> }
}

const spec = parseYaml(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Schema> }
}
const resolve = (schema: Schema | undefined): Schema | undefined => {
  const ref = schema?.$ref
  return typeof ref === 'string' ? resolve(spec.components.schemas[ref.split('/').at(-1)!]) : schema
}

const admin = authHeaders({ sub: 'root', groups: ['payments'], roles: ['admin'] })
/** Values that name real things, so a request that survives fuzzing of one part reaches the service. */
const VALID_PARAMS: Record<string, string> = {
  registry: 'local',
  repository: encodeURIComponent('payments/api'),
  reference: 'v1',
  id: '00000000-0000-4000-8000-000000000000',
  runId: '00000000-0000-4000-8000-000000000001',
}

// Path and query values: NUL, bytes that are not UTF-8 (a lone surrogate in CESU form, a cut
// sequence, an overlong NUL), numbers past any bound, patterns that do not compile, length.
const URL_VALUES = [
  '%00',
  'a%00b',
  '%ED%A0%80',
  '%F0%9F',
  '%C0%80',
  '%FF',
  '1e309',
  '-1e309',
  '99999999999999999999999',
  'NaN',
  '-1',
  '0',
  '1.5',
  encodeURIComponent('/(/'),
  encodeURIComponent('v[1'),
  encodeURIComponent('/(a)\\1/'),
  '..%2F..%2Fetc',
  'x'.repeat(3000),
  '%',
]

// Body values as raw JSON text, so that numbers beyond a double and lone surrogate escapes arrive as
// the parser produces them.
const JSON_VALUES = [
  '"\\u0000"',
  '"a\\u0000b"',
  '"\\ud800"',
  '"x\\udc00"',
  '1e309',
  '-1e309',
  '99999999999999999999999',
  '"/(/"',
  '"v[1"',
  '"/(a)\\\\1/"',
  'null',
  '{}',
  '[]',
  `"${'x'.repeat(5000)}"`,
]

const ENVELOPES = [
  '',
  '{}',
  '[]',
  'null',
  '5',
  '"text"',
  '{"a":',
  `${'['.repeat(5000)}${']'.repeat(5000)}`,
  '{"\\u0000":1}',
]

/** A body of the route's schema with every required property present: the base the fuzz mutates. */
function sample(schema: Schema | undefined, depth = 0): unknown {
  const s = resolve(schema)
  if (!s || depth > 6) return null
  if ('const' in s) return s.const
  if (Array.isArray(s.enum)) return s.enum[0]
  for (const key of ['anyOf', 'oneOf'])
    if (Array.isArray(s[key])) return sample((s[key] as Schema[])[0], depth + 1)
  switch (s.type) {
    case 'object': {
      const properties = (s.properties ?? {}) as Record<string, Schema>
      const required = (s.required ?? []) as string[]
      return Object.fromEntries(required.map((name) => [name, sample(properties[name], depth + 1)]))
    }
    case 'array':
      return [sample(s.items as Schema, depth + 1)]
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 1
    case 'boolean':
      return false
    case 'string':
      if (s.format === 'uuid') return VALID_PARAMS.id
      if (s.format === 'date-time') return '2999-01-01T00:00:00Z'
      return typeof s.minLength === 'number' && s.minLength > 1 ? 'x'.repeat(s.minLength) : 'x'
    default:
      return null
  }
}

/** Bodies known to pass validation, so their mutations reach the services. */
const VALID_BODIES: Record<string, unknown> = {
  'POST /v1/deletions': {
    registry: 'local',
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'v1' }],
    reason: 'fuzz',
    dryRun: true,
  },
  'POST /v1/policies': {
    name: 'fuzz',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/**'],
    rules: [{ select: { include: ['pr-*'] }, expire: { always: true } }],
  },
  'POST /v1/legal-holds': { repository: 'payments/**', reason: 'fuzz', until: '2999-01-01T00:00:00Z' },
}
VALID_BODIES['POST /v1/policies/preview'] = VALID_BODIES['POST /v1/policies']
VALID_BODIES['PUT /v1/policies/{id}'] = VALID_BODIES['POST /v1/policies']

/** Every (path, value) of a JSON document, to mutate one at a time. */
function leaves(value: unknown, path: string[] = []): string[][] {
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
    return [path, ...entries.flatMap(([key, inner]) => leaves(inner, [...path, key]))]
  }
  return [path]
}

/** `base` as JSON text with the value at `path` replaced by the raw JSON `raw`. */
function mutate(base: unknown, path: string[], raw: string): string {
  const marker = '__FUZZ_MARKER__'
  if (path.length === 0) return raw
  const copy = structuredClone(base) as Record<string, unknown>
  let at: Record<string, unknown> = copy
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>
  at[path.at(-1)!] = marker
  return JSON.stringify(copy).replace(`"${marker}"`, raw)
}

function requestsFor(route: string, method: string, operation: Operation): InjectOptions[] {
  const upper = method.toUpperCase()
  const params = (operation.parameters ?? []).filter((p) => p.in === 'path')
  const query = (operation.parameters ?? []).filter((p) => p.in === 'query')
  const urlOf = (values: Record<string, string>, search = '') =>
    route.replace(/\{(\w+)\}/g, (_m, name: string) => values[name] ?? VALID_PARAMS[name] ?? 'x') + search
  const content = operation.requestBody?.content ?? {}
  const json = content['application/json']
  const form = content['application/x-www-form-urlencoded']
  const body = VALID_BODIES[`${upper} ${route}`] ?? (json ? sample(json.schema) : undefined)
  const base = (url: string): InjectOptions => ({
    method: upper as InjectOptions['method'],
    url,
    headers: { ...admin, ...(json ? { 'content-type': 'application/json' } : {}) },
    ...(json ? { payload: JSON.stringify(body) } : {}),
  })

  const requests: InjectOptions[] = [base(urlOf({}))]
  for (const param of params)
    for (const value of URL_VALUES) requests.push(base(urlOf({ [param.name]: value })))
  for (const param of query)
    for (const value of URL_VALUES) requests.push(base(urlOf({}, `?${param.name}=${value}`)))
  // A token in the query string is refused, not logged.
  requests.push(base(urlOf({}, '?access_token=eyJhbGciOiJIUzI1NiJ9.e30.x')))
  requests.push({ ...base(urlOf({})), headers: { ...admin, 'user-agent': 'bad\u0000agent' } })
  if (json) {
    for (const path of leaves(body))
      for (const raw of JSON_VALUES) requests.push({ ...base(urlOf({})), payload: mutate(body, path, raw) })
    for (const raw of ENVELOPES) requests.push({ ...base(urlOf({})), payload: raw })
    requests.push({ ...base(urlOf({})), headers: { ...admin, 'content-type': 'text/plain' }, payload: 'x' })
  }
  if (form) {
    for (const raw of [
      'user_id=%00',
      'text=%ED%A0%80',
      'payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3Anull%7D%7D',
      '',
      '%%',
    ])
      requests.push({
        ...base(urlOf({})),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: raw,
      })
  }
  return requests
}

/** GraphQL envelopes and documents, which openapi.yaml describes only as one route. */
const GRAPHQL_REQUESTS: InjectOptions[] = [
  ...ENVELOPES.map((payload) => ({ payload })),
  ...[
    '{"query":null}',
    '{"query":5}',
    '{"query":""}',
    '{"query":"{ me { subject } }","variables":5}',
    '{"query":"{ me { subject } }","variables":[]}',
    '{"query":"{ me { subject } }","operationName":7}',
    '[{"query":"{ me { subject } }"}]',
  ].map((payload) => ({ payload })),
  { payload: JSON.stringify({ query: '{ deletion(id: "\\u0000") { id } }' }) },
  {
    payload: JSON.stringify({
      query: 'query ($id: ID!) { deletion(id: $id) { id } }',
      variables: { id: '\u0000' },
    }),
  },
  { payload: '{"query":"query ($id: ID!) { deletion(id: $id) { id } }","variables":{"id":"\\ud800"}}' },
  { payload: JSON.stringify({ query: '{ deletion(id: "not-a-uuid") { id } }' }) },
  { payload: JSON.stringify({ query: '{ gcRun(id: "not-a-uuid") { id } }' }) },
  { payload: JSON.stringify({ query: '{ retentionPolicy(id: "x") { id } }' }) },
  { payload: JSON.stringify({ query: '{ notificationDelivery(id: "x") { id } }' }) },
  {
    payload: JSON.stringify({
      query: '{ auditEvents(from: "yesterday", deletionId: "x") { nodes { id } } }',
    }),
  },
  { payload: JSON.stringify({ query: '{ deletions(first: 99999999, after: "garbage") { nodes { id } } }' }) },
  {
    payload: JSON.stringify({
      query: '{ registry(name: "local") { repository(name: "../..") { tags { nodes { name } } } } }',
    }),
  },
  {
    payload: JSON.stringify({
      query:
        '{ registry(name: "local") { repository(name: "payments/api") { manifest(reference: "v[1") { digest } } } }',
    }),
  },
  {
    payload: JSON.stringify({
      query:
        'mutation { placeLegalHold(input: { repository: "/(/", reason: "x", until: "2999-01-01T00:00:00Z" }) { id } }',
    }),
  },
  { payload: JSON.stringify({ query: 'mutation { createRetentionPolicy(input: 5) { id } }' }) },
  { payload: JSON.stringify({ query: 'mutation { liftLegalHold(id: "x") { id } }' }) },
  { payload: JSON.stringify({ query: '{ __schema { types { name } } }' }) },
  { payload: JSON.stringify({ query: '{ me { subject } }', extensions: 'x' }) },
  { method: 'GET', url: '/graphql' },
  { method: 'GET', url: '/graphql?query=%00' },
  { method: 'GET', url: '/graphql?query=%7B%20me%20%7B%20subject%20%7D%20%7D&variables=%7Bnot%20json' },
  {
    method: 'GET',
    url: '/graphql?query=mutation%20%7B%20cancelDeletion(id%3A%20%22x%22)%20%7B%20id%20%7D%20%7D',
  },
]

function codesOf(body: unknown): string[] {
  const b = body as { error?: { code?: unknown }; errors?: { extensions?: { code?: unknown } }[] } | null
  if (b?.error) return [String(b.error.code)]
  return (b?.errors ?? []).map((e) => String(e.extensions?.code))
}

async function fuzz(t: Test, app: FastifyInstance, label: string, request: InjectOptions) {
  const res = await app.inject(request)
  const where = `${label} ${String(request.method ?? 'POST')} ${String(request.url).slice(0, 120)} ${String(request.payload ?? '').slice(0, 80)}`
  // GraphQL answers a failed resolver with 200 and REGENT_INTERNAL in `errors`: a 5xx all the same.
  if (res.statusCode >= 500 || res.body.includes('"REGENT_INTERNAL"')) {
    t.fail(`${where} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
    return 'fail'
  }
  if (res.statusCode >= 400) {
    let body: unknown
    try {
      body = res.json()
    } catch {
      body = null
    }
    const codes = codesOf(body)
    if (codes.length === 0 || !codes.every((c) => c.startsWith('REGENT_'))) {
      t.fail(`${where} answered ${res.statusCode} without a REGENT_* code: ${res.body.slice(0, 300)}`)
      return 'fail'
    }
  }
  return res.statusCode
}

t.test('no request to any route answers 5xx, and every 4xx carries a REGENT_* code', async (t) => {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  await pushImage(client, 'payments/api', { tags: ['v1'] })
  const app = await build(t, {
    env: { FUZZ_EVENTS_SECRET: 'fuzz-secret' },
    config: {
      registries: [registryConfig(registry, { name: 'local', events: { secretEnv: 'FUZZ_EVENTS_SECRET' } })],
      governance: { teams: [{ name: 'payments', repositories: [{ pattern: 'payments/**' }] }] },
      chatops: { slack: { signingSecret: 'fuzz-signing-secret', users: [] } },
      notifications: { webhooks: [] },
    },
  })

  const outcomes = new Map<string, number>()
  let sent = 0
  for (const [route, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      for (const request of requestsFor(route, method, operation)) {
        const outcome = await fuzz(t, app, `${method.toUpperCase()} ${route}`, request)
        sent++
        outcomes.set(String(outcome), (outcomes.get(String(outcome)) ?? 0) + 1)
      }
    }
  }
  for (const request of GRAPHQL_REQUESTS) {
    const outcome = await fuzz(t, app, 'graphql', {
      method: 'POST',
      url: '/graphql',
      ...request,
      headers: { ...admin, 'content-type': 'application/json' },
    })
    sent++
    outcomes.set(String(outcome), (outcomes.get(String(outcome)) ?? 0) + 1)
  }
  t.comment(`sent ${sent} requests: ${JSON.stringify(Object.fromEntries(outcomes))}`)
  t.notOk(outcomes.has('fail'), 'no request failed the rules')
  t.ok(sent > 1000, `the fuzz covered the API (${sent} requests)`)
})
