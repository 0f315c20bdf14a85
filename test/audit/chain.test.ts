import t from 'tap'
import { appendAuditEvent, computeEventHash, GENESIS_HASH, verifyAuditChain } from '../../src/audit/index.js'
import { withTransaction } from '../../src/db/transaction.js'
import { appendEvents, auditDatabase, sampleInput, tamper } from './fixtures.js'

t.test(
  'fifty concurrent audited writes, each in its own transaction, leave a gap-free chain that verifies',
  async (t) => {
    const { pool } = await auditDatabase(t, 25)
    const events = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        withTransaction(pool, async (client) => {
          // Some work of the caller's own before the audit write, as a state change would do.
          await client.query('SELECT pg_sleep($1::float8)', [(i % 5) / 1000])
          return appendAuditEvent(client, sampleInput({ requestId: `req-${i}`, details: { i } }))
        }),
      ),
    )
    t.same(
      events.map((e) => e.seq).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
      'the writers got seq 1..50, each once',
    )
    const { rows } = await pool.query<{ seq: string; prev_hash: string; hash: string; occurred_at: Date }>(
      'SELECT seq::text AS seq, prev_hash, hash, occurred_at FROM audit_events ORDER BY audit_events.seq',
    )
    t.equal(rows.length, 50)
    rows.forEach((row, i) => {
      if (Number(row.seq) !== i + 1) t.fail(`seq ${i + 1} missing`)
      if (row.prev_hash !== (i === 0 ? GENESIS_HASH : rows[i - 1]!.hash))
        t.fail(`seq ${row.seq} does not link`)
    })
    t.ok(
      rows.every((row, i) => i === 0 || row.occurred_at >= rows[i - 1]!.occurred_at),
      'occurred_at follows seq order',
    )
    t.same(await verifyAuditChain(pool), { ok: true, checked: 50, lastSeq: 50, lastHash: rows[49]!.hash })
    const head = await pool.query('SELECT last_seq::int, last_hash FROM audit_chain_head')
    t.same(head.rows[0], { last_seq: 50, last_hash: rows[49]!.hash }, 'the chain head is the newest event')
  },
)

t.test(
  'an event written in a transaction that rolls back leaves no trace and does not break the chain',
  async (t) => {
    const { pool } = await auditDatabase(t)
    await appendEvents(pool, [sampleInput({ requestId: 'first' })])
    await t.rejects(
      withTransaction(pool, async (client) => {
        await appendAuditEvent(client, sampleInput({ requestId: 'rolled-back' }))
        throw new Error('the state change failed after the audit write')
      }),
      /state change failed/,
    )
    const [third] = await appendEvents(pool, [sampleInput({ requestId: 'third' })])
    t.equal(third?.seq, 2, 'the next event takes the seq the rolled-back one had')
    const { rows } = await pool.query('SELECT request_id FROM audit_events ORDER BY seq')
    t.same(
      rows.map((r) => r.request_id),
      ['first', 'third'],
      'the rolled-back event is gone',
    )
    t.match(await verifyAuditChain(pool), { ok: true, checked: 2, lastSeq: 2 })
  },
)

t.test('the stored row recomputes to its hash: microsecond timestamps and jsonb details', async (t) => {
  const { pool } = await auditDatabase(t)
  const [event] = await appendEvents(pool, [
    sampleInput({
      deletionId: 'A1B2C3D4-0000-4000-8000-00000000000F',
      onBehalfOf: 'bob',
      details: {
        z: 1,
        a: { y: [1, 'two', null], b: 1e21 },
        when: new Date('2025-01-01T00:00:00Z'),
        gone: undefined,
      },
    }),
  ])
  t.match(event?.occurredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'occurredAt keeps microseconds')
  t.equal(
    event?.deletionId,
    'a1b2c3d4-0000-4000-8000-00000000000f',
    'the uuid is stored as Postgres prints it',
  )
  t.same(event?.details, { z: 1, a: { y: [1, 'two', null], b: 1e21 }, when: '2025-01-01T00:00:00.000Z' })
  t.equal(
    computeEventHash(event!.prevHash, event!),
    event?.hash,
    'the hash recomputes from the row read back',
  )
  const stored = await pool.query(
    "SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'US') AS us FROM audit_events",
  )
  t.equal(event?.occurredAt.slice(20, 26), stored.rows[0].us, 'the hashed timestamp is the stored one')
})

t.test('editing one row makes verification name that row\u2019s seq', async (t) => {
  const { pool } = await auditDatabase(t)
  await appendEvents(
    pool,
    Array.from({ length: 6 }, (_, i) => sampleInput({ requestId: `r${i}` })),
  )
  t.match(await verifyAuditChain(pool), { ok: true, checked: 6 })
  await tamper(pool, "UPDATE audit_events SET outcome = 'failed' WHERE seq = 3")
  t.same(await verifyAuditChain(pool), { ok: false, checked: 2, firstBrokenSeq: 3, reason: 'hash_mismatch' })
  t.same(
    await verifyAuditChain(pool, { batchSize: 2 }),
    { ok: false, checked: 2, firstBrokenSeq: 3, reason: 'hash_mismatch' },
    'the same answer in small batches',
  )
})

t.test('deleting one row makes verification name the missing seq', async (t) => {
  const { pool } = await auditDatabase(t)
  await appendEvents(
    pool,
    Array.from({ length: 6 }, () => sampleInput()),
  )
  await tamper(pool, 'DELETE FROM audit_events WHERE seq = 4')
  t.same(await verifyAuditChain(pool), { ok: false, checked: 3, firstBrokenSeq: 4, reason: 'missing_seq' })
})

t.test(
  'deleting the newest rows leaves no hole but the chain head still names the first missing seq',
  async (t) => {
    const { pool } = await auditDatabase(t)
    await appendEvents(
      pool,
      Array.from({ length: 6 }, () => sampleInput()),
    )
    await tamper(pool, 'DELETE FROM audit_events WHERE seq >= 5')
    t.same(await verifyAuditChain(pool), { ok: false, checked: 4, firstBrokenSeq: 5, reason: 'missing_seq' })
  },
)

t.test('rewriting a row together with its hash breaks the link from the next row', async (t) => {
  const { pool } = await auditDatabase(t)
  const events = await appendEvents(
    pool,
    Array.from({ length: 5 }, () => sampleInput()),
  )
  const forged = { ...events[2]!, outcome: 'failed' }
  await tamper(pool, "UPDATE audit_events SET outcome = 'failed', hash = $1 WHERE seq = 3", [
    computeEventHash(forged.prevHash, forged),
  ])
  t.same(await verifyAuditChain(pool), {
    ok: false,
    checked: 3,
    firstBrokenSeq: 4,
    reason: 'prev_hash_mismatch',
  })
})

t.test('a chain rewritten consistently is caught by a checkpoint exported before', async (t) => {
  const { pool } = await auditDatabase(t)
  const events = await appendEvents(
    pool,
    Array.from({ length: 5 }, () => sampleInput()),
  )
  const before = await verifyAuditChain(pool)
  if (!before.ok) throw new Error('chain should verify')
  const checkpoint = { seq: before.lastSeq, hash: before.lastHash }

  // Forge every row from seq 2 on, relinking the chain and moving the head: it verifies on its own.
  let prev = events[0]!.hash
  for (const event of events.slice(1)) {
    const forged = { ...event, actorSubject: 'mallory', prevHash: prev }
    const hash = computeEventHash(prev, forged)
    await tamper(
      pool,
      "UPDATE audit_events SET actor_subject = 'mallory', prev_hash = $1, hash = $2 WHERE seq = $3",
      [prev, hash, event.seq],
    )
    prev = hash
  }
  await tamper(pool, 'UPDATE audit_chain_head SET last_hash = $1', [prev])
  t.match(await verifyAuditChain(pool), { ok: true, checked: 5 }, 'without the checkpoint the forgery passes')
  t.same(
    await verifyAuditChain(pool, { checkpoint }),
    { ok: false, checked: 4, firstBrokenSeq: 5, reason: 'hash_mismatch' },
    'the exported checkpoint exposes it',
  )
  t.same(
    await verifyAuditChain(pool, { checkpoint: { seq: 9, hash: checkpoint.hash } }),
    { ok: false, checked: 5, firstBrokenSeq: 6, reason: 'missing_seq' },
    'a checkpoint beyond the end of the chain means rows are gone',
  )
})

t.test('verification walks in keyset batches and can start from a later seq', async (t) => {
  const { pool } = await auditDatabase(t)
  const events = await appendEvents(
    pool,
    Array.from({ length: 7 }, () => sampleInput()),
  )
  const last = events.at(-1)!
  t.same(await verifyAuditChain(pool, { batchSize: 2 }), {
    ok: true,
    checked: 7,
    lastSeq: 7,
    lastHash: last.hash,
  })
  t.same(await verifyAuditChain(pool, { batchSize: 7 }), {
    ok: true,
    checked: 7,
    lastSeq: 7,
    lastHash: last.hash,
  })
  t.same(await verifyAuditChain(pool, { fromSeq: 5, batchSize: 3 }), {
    ok: true,
    checked: 3,
    lastSeq: 7,
    lastHash: last.hash,
  })
  await tamper(pool, "UPDATE audit_events SET outcome = 'x' WHERE seq = 2")
  t.match(
    await verifyAuditChain(pool, { fromSeq: 3 }),
    { ok: true },
    'a walk from seq 3 does not look at seq 2',
  )
  const empty = await auditDatabase(t)
  t.same(
    await verifyAuditChain(empty.pool),
    { ok: true, checked: 0, lastSeq: 0, lastHash: GENESIS_HASH },
    'an empty chain verifies',
  )
})
