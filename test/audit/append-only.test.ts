import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { appendAuditEvent, verifyAuditChain } from '../../src/audit/index.js'
import { withTransaction } from '../../src/db/transaction.js'
import { adminQuery } from '../helper.js'
import { appendEvents, auditDatabase, sampleInput } from './fixtures.js'

t.test(
  'the app\u2019s own SQL cannot UPDATE, DELETE or TRUNCATE audit_events: the triggers refuse',
  async (t) => {
    const { pool } = await auditDatabase(t)
    await appendEvents(pool, [sampleInput(), sampleInput()])
    const refused = {
      code: '42501',
      message: /audit_events is append-only: (UPDATE|DELETE|TRUNCATE) is not allowed/,
    }
    await t.rejects(pool.query("UPDATE audit_events SET outcome = 'failed' WHERE seq = 1"), refused, 'UPDATE')
    await t.rejects(pool.query('DELETE FROM audit_events WHERE seq = 2'), refused, 'DELETE')
    await t.rejects(pool.query('TRUNCATE audit_events'), refused, 'TRUNCATE')
    await t.rejects(pool.query('TRUNCATE audit_events CASCADE'), refused, 'TRUNCATE … CASCADE')
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE outcome = 'succeeded'",
    )
    t.equal(rows[0].n, 2, 'both events are unchanged')
    t.match(await verifyAuditChain(pool), { ok: true, checked: 2 })
  },
)

t.test('the chain head only advances one step at a time and cannot be removed', async (t) => {
  const { pool } = await auditDatabase(t)
  await appendEvents(pool, [sampleInput()])
  await t.rejects(pool.query('UPDATE audit_chain_head SET last_seq = 7'), {
    code: '42501',
    message: /may only advance by one/,
  })
  await t.rejects(pool.query('UPDATE audit_chain_head SET last_seq = 0'), { code: '42501' })
  await t.rejects(pool.query('DELETE FROM audit_chain_head'), { code: '42501', message: /cannot be removed/ })
  await t.rejects(pool.query('TRUNCATE audit_chain_head'), { code: '42501' })
  await t.rejects(pool.query("INSERT INTO audit_chain_head VALUES (true, 5, repeat('1', 64))"), {
    code: '23505',
  })
  t.match(await verifyAuditChain(pool), { ok: true, checked: 1 })
})

t.test(
  'a role with INSERT and SELECT only can append and read, but not change or remove audit events',
  async (t) => {
    const { pool, url } = await auditDatabase(t)
    const role = `regent_app_${randomBytes(4).toString('hex')}`
    await adminQuery(`CREATE ROLE ${role} NOLOGIN`)
    try {
      // The grants documented at the end of migrations/002.do.audit.sql.
      await pool.query(`GRANT USAGE ON SCHEMA public TO ${role}`)
      await pool.query(`GRANT SELECT, INSERT ON audit_events TO ${role}`)
      await pool.query(`GRANT SELECT, UPDATE ON audit_chain_head TO ${role}`)

      const appPool = new pg.Pool({ connectionString: url, max: 1 })
      appPool.on('error', () => {})
      // Every connection of this pool acts as the app role (queued before any query of the caller).
      appPool.on('connect', (client) => {
        client.query(`SET ROLE ${role}`).catch(() => {})
      })
      try {
        const event = await withTransaction(appPool, (client) => appendAuditEvent(client, sampleInput()))
        t.equal(event.seq, 1, 'the writer needs nothing more than these grants')
        const whoami = await appPool.query('SELECT current_user AS name')
        t.equal(whoami.rows[0].name, role, 'the pool really runs as the app role')
        const read = await appPool.query('SELECT count(*)::int AS n FROM audit_events')
        t.equal(read.rows[0].n, 1, 'it can read the log')
        const denied = { code: '42501', message: /permission denied for table audit_events/ }
        await t.rejects(
          appPool.query("UPDATE audit_events SET outcome = 'failed'"),
          denied,
          'UPDATE is denied',
        )
        await t.rejects(appPool.query('DELETE FROM audit_events'), denied, 'DELETE is denied')
        await t.rejects(appPool.query('TRUNCATE audit_events'), denied, 'TRUNCATE is denied')
        t.match(await verifyAuditChain(appPool), { ok: true, checked: 1 }, 'and it can verify the chain')
      } finally {
        await appPool.end()
      }
    } finally {
      await pool.query(`DROP OWNED BY ${role}`)
      await adminQuery(`DROP ROLE ${role}`)
    }
  },
)
