import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { appendAuditEvent, auditActor } from '../../src/audit/index.js'
import { withTransaction } from '../../src/db/transaction.js'
import { authHeaders, build } from '../helper.js'

/**
 * Every list pages on a key exact to the row: 200 rows created within one millisecond (two by two
 * on the very same microsecond) are each listed exactly once when paged one row at a time.
 */

const ROWS = 200
const admin = authHeaders({ sub: 'root', roles: ['admin'] })
// Row i is created at BASE + floor(i / 2) microseconds: all within 100 µs, pairs on one instant.
const BASE = '2030-01-01T00:00:00.000Z'
const createdAt = `'${BASE}'::timestamptz + (i / 2) * interval '1 microsecond'`

async function seed(app: FastifyInstance) {
  const plan = {
    registry: 'local',
    verb: 'untag',
    items: [],
    problems: [],
    warnings: [],
    bytesFreed: 0,
    repositories: [],
    approvals: { count: 0, from: [], adminCount: 0, reasons: [] },
    hash: 'a'.repeat(64),
  }
  await app.db.query(
    `INSERT INTO deletion_requests (registry, verb, targets, reason, requester_subject, requester_person,
       requester_channel, state, plan, plan_hash, approval_requirement, created_at)
     SELECT 'local', 'untag', '[]', 'paging', 'root', 'root', 'api', 'cancelled', $1::jsonb, $2,
            $3::jsonb, ${createdAt}
     FROM generate_series(0, ${ROWS - 1}) AS i`,
    [JSON.stringify(plan), plan.hash, JSON.stringify(plan.approvals)],
  )
  await app.db.query(
    `INSERT INTO gc_runs (registry, trigger, requested_by, state, finished_at, created_at)
     SELECT 'local', 'manual', 'root', 'succeeded', now(), ${createdAt}
     FROM generate_series(0, ${ROWS - 1}) AS i`,
  )
  await app.db.query(
    `INSERT INTO notification_deliveries (webhook, event_type, subject, summary, payload, created_at)
     SELECT 'ops', 'gc.finished', 'run-' || i, 'paging', '{}'::jsonb, ${createdAt}
     FROM generate_series(0, ${ROWS - 1}) AS i`,
  )
  // The audit log's occurred_at is written by the chain itself; its pages are keyed by seq.
  await withTransaction(app.db, async (client) => {
    for (let i = 0; i < ROWS; i++) {
      await appendAuditEvent(client, {
        ...auditActor(
          { subject: 'root', teams: [], roles: ['admin'], channel: 'api' },
          { requestId: 'seed' },
        ),
        action: 'paging.seeded',
        outcome: 'ok',
        details: { i },
      })
    }
  })
}

async function pageThroughRest(app: FastifyInstance, url: string): Promise<string[]> {
  const ids: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < ROWS * 2; page++) {
    const query = `limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const res = await app.inject({ url: `${url}${url.includes('?') ? '&' : '?'}${query}`, headers: admin })
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
    const body = res.json() as { items: { id: string }[]; nextCursor: string | null }
    ids.push(...body.items.map((item) => item.id))
    cursor = body.nextCursor
    if (cursor === null) break
  }
  return ids
}

async function pageThroughGraphql(app: FastifyInstance, field: string, filter = ''): Promise<string[]> {
  const ids: string[] = []
  let after: string | null = null
  for (let page = 0; page < ROWS * 2; page++) {
    const res = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: admin,
      payload: {
        query: `query ($after: String) { ${field}(first: 1, after: $after${filter}) { nodes { id } pageInfo { hasNextPage endCursor } } }`,
        variables: { after },
      },
    })
    const body = res.json() as {
      data: Record<string, { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string } }>
    }
    const connection = body.data[field]
    if (!connection) throw new Error(`${field}: ${res.body}`)
    ids.push(...connection.nodes.map((n) => n.id))
    if (!connection.pageInfo.hasNextPage) break
    after = connection.pageInfo.endCursor
  }
  return ids
}

t.test('paging one row at a time lists each of 200 rows made within a millisecond once', async (t) => {
  const app = await build(t)
  await seed(app)
  const lists: [string, () => Promise<string[]>][] = [
    ['GET /v1/deletions', () => pageThroughRest(app, '/v1/deletions')],
    ['GET /v1/gc-runs', () => pageThroughRest(app, '/v1/gc-runs')],
    ['GET /v1/notifications/deliveries', () => pageThroughRest(app, '/v1/notifications/deliveries')],
    ['GET /v1/audit', () => pageThroughRest(app, '/v1/audit?action=paging.seeded')],
    ['graphql deletions', () => pageThroughGraphql(app, 'deletions')],
    ['graphql gcRuns', () => pageThroughGraphql(app, 'gcRuns')],
    ['graphql notificationDeliveries', () => pageThroughGraphql(app, 'notificationDeliveries')],
    ['graphql auditEvents', () => pageThroughGraphql(app, 'auditEvents', ', action: "paging.seeded"')],
  ]
  for (const [name, pageThrough] of lists) {
    const ids = await pageThrough()
    t.equal(new Set(ids).size, ids.length, `${name}: no row listed twice`)
    t.equal(ids.length, ROWS, `${name}: each of the ${ROWS} rows listed`)
  }
})

t.test(
  'a cursor naming no timestamp and id of ours is 400 REGENT_INVALID_CURSOR, not a database error',
  async (t) => {
    const app = await build(t)
    for (const value of [
      { createdAt: 'yesterday', id: 'x' },
      { createdAt: BASE, id: 'not-a-uuid' },
    ]) {
      const cursor = Buffer.from(JSON.stringify(value)).toString('base64url')
      for (const url of ['/v1/deletions', '/v1/gc-runs', '/v1/notifications/deliveries']) {
        const res = await app.inject({ url: `${url}?cursor=${cursor}`, headers: admin })
        t.equal(res.statusCode, 400, url)
        t.equal(res.json().error.code, 'REGENT_INVALID_CURSOR', url)
      }
    }
  },
)
