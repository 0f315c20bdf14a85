import t, { type Test } from 'tap'
import { type AuditEvent, listAuditEvents, streamAuditEvents } from '../../src/audit/index.js'
import type { AuditFilters } from '../../src/audit/queries.js'
import { appendEvents, auditDatabase, sampleInput } from './fixtures.js'

const DELETION = '5f0c6d52-0a4e-4b47-9a44-9b8f3c1c2d01'

/** 30 events: registries, repositories, actors (some through a bot), actions and one deletion. */
async function seed(t: Test) {
  const { pool } = await auditDatabase(t)
  const inputs = Array.from({ length: 30 }, (_, i) =>
    sampleInput({
      registry: i % 3 === 0 ? 'prod' : 'main',
      repository: i % 2 === 0 ? 'payments/api' : 'billing/api',
      actorSubject: i % 5 === 0 ? 'chatbot' : i % 2 === 0 ? 'ann' : 'bob',
      onBehalfOf: i % 5 === 0 ? 'carl' : null,
      channel: i % 5 === 0 ? 'slack' : 'api',
      action: i % 4 === 0 ? 'deletion.approved' : 'deletion.requested',
      deletionId: i >= 20 && i < 25 ? DELETION : null,
      requestId: `req-${i}`,
    }),
  )
  const events = await appendEvents(pool, inputs)
  return { pool, events }
}

async function allPages(
  pool: Awaited<ReturnType<typeof seed>>['pool'],
  filters: AuditFilters,
  limit: number,
): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = []
  let cursor: string | undefined
  let pages = 0
  for (;;) {
    const page = await listAuditEvents(pool, filters, cursor === undefined ? { limit } : { limit, cursor })
    pages++
    events.push(...page.events)
    if (!page.nextCursor) return { events, pages }
    cursor = page.nextCursor
  }
}

t.test(
  'filters select by registry, repository, actor (subject or on-behalf-of), action, deletion and time',
  async (t) => {
    const { pool, events } = await seed(t)
    const newestFirst = (keep: (e: AuditEvent) => boolean) =>
      events
        .filter(keep)
        .map((e) => e.seq)
        .reverse()
    const cases: Array<[name: string, filters: AuditFilters, keep: (e: AuditEvent) => boolean]> = [
      ['no filter', {}, () => true],
      ['registry', { registry: 'prod' }, (e) => e.registry === 'prod'],
      ['repository', { repository: 'billing/api' }, (e) => e.repository === 'billing/api'],
      [
        'registry and repository',
        { registry: 'prod', repository: 'payments/api' },
        (e) => e.registry === 'prod' && e.repository === 'payments/api',
      ],
      ['actor as the subject', { actor: 'ann' }, (e) => e.actorSubject === 'ann'],
      ['actor as the person a bot acted for', { actor: 'carl' }, (e) => e.onBehalfOf === 'carl'],
      ['actor as the bot itself', { actor: 'chatbot' }, (e) => e.actorSubject === 'chatbot'],
      ['action', { action: 'deletion.approved' }, (e) => e.action === 'deletion.approved'],
      ['deletion id', { deletionId: DELETION.toUpperCase() }, (e) => e.deletionId === DELETION],
      ['from (inclusive), microsecond precise', { from: events[10]!.occurredAt }, (e) => e.seq >= 11],
      ['to (exclusive)', { to: events[10]!.occurredAt }, (e) => e.seq <= 10],
      [
        'a time window',
        { from: events[5]!.occurredAt, to: events[8]!.occurredAt },
        (e) => e.seq >= 6 && e.seq <= 8,
      ],
      ['a Date bound', { to: new Date(Date.parse(events[0]!.occurredAt) - 1) }, () => false],
      ['no match', { registry: 'nowhere' }, () => false],
    ]
    for (const [name, filters, keep] of cases) {
      const { events: found } = await allPages(pool, filters, 500)
      t.same(
        found.map((e) => e.seq),
        newestFirst(keep),
        name,
      )
    }
  },
)

t.test(
  'keyset pagination walks every matching event once, newest first, with no gaps or repeats',
  async (t) => {
    const { pool, events } = await seed(t)
    for (const limit of [1, 4, 7, 29, 30, 31]) {
      const { events: found, pages } = await allPages(pool, {}, limit)
      t.same(
        found.map((e) => e.seq),
        events.map((e) => e.seq).reverse(),
        `pages of ${limit}`,
      )
      t.equal(pages, Math.ceil(30 / limit), 'and stops on the last page, not after an empty one')
    }
    const filtered = await allPages(pool, { repository: 'payments/api' }, 4)
    t.same(
      filtered.events.map((e) => e.seq),
      events
        .filter((e) => e.repository === 'payments/api')
        .map((e) => e.seq)
        .reverse(),
      'filtered pages too',
    )

    // Events appended between pages are newer than the cursor: later pages neither repeat nor skip.
    const first = await listAuditEvents(pool, {}, { limit: 10 })
    await appendEvents(pool, [sampleInput(), sampleInput()])
    let cursor = first.nextCursor!
    const seen = [...first.events]
    for (;;) {
      const page = await listAuditEvents(pool, {}, { limit: 10, cursor })
      seen.push(...page.events)
      if (!page.nextCursor) break
      cursor = page.nextCursor
    }
    t.same(
      seen.map((e) => e.seq),
      Array.from({ length: 30 }, (_, i) => 30 - i),
      'writes between pages do not disturb the walk',
    )
  },
)

t.test('bad page requests are refused with REGENT_VALIDATION', async (t) => {
  const { pool } = await auditDatabase(t)
  const invalid = { code: 'REGENT_VALIDATION', statusCode: 400 }
  await t.rejects(listAuditEvents(pool, {}, { cursor: 'not-a-cursor' }), invalid, 'a malformed cursor')
  await t.rejects(
    listAuditEvents(pool, {}, { cursor: Buffer.from('{"before":-1}').toString('base64url') }),
    invalid,
    'a cursor with a bad seq',
  )
  await t.rejects(listAuditEvents(pool, {}, { limit: 0 }), invalid, 'limit 0')
  await t.rejects(listAuditEvents(pool, {}, { limit: 501 }), invalid, 'limit above 500')
  await t.rejects(listAuditEvents(pool, { deletionId: 'nope' }), invalid, 'a deletion id that is no uuid')
  await t.rejects(listAuditEvents(pool, { from: 'yesterday' }), invalid, 'a time that is no ISO date-time')
})

t.test('streamAuditEvents yields every matching event in chain order, in batches', async (t) => {
  const { pool, events } = await seed(t)
  const streamed: AuditEvent[] = []
  for await (const event of streamAuditEvents(pool, {}, { batchSize: 4 })) streamed.push(event)
  t.same(streamed, events, 'all 30, oldest first, as stored')
  const filtered: number[] = []
  for await (const event of streamAuditEvents(pool, { actor: 'carl' }, { batchSize: 2 }))
    filtered.push(event.seq)
  t.same(
    filtered,
    events.filter((e) => e.onBehalfOf === 'carl').map((e) => e.seq),
  )
  const lines: string[] = []
  for await (const event of streamAuditEvents(pool, { registry: 'prod' })) lines.push(JSON.stringify(event))
  t.equal(lines.length, 10, 'one NDJSON line per event')
})
