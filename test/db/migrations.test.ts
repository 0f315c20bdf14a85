import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { databaseVersion, latestMigrationVersion, migrate } from '../../src/db/migrate.js'
import { createTestDatabase, testPool } from '../helper.js'

t.test('two instances racing on an empty database both become ready; each migration runs once', async (t) => {
  const url = await createTestDatabase(t, { empty: true })
  const config = loadConfig({}, { databaseUrl: url, logLevel: 'silent' })
  const apps = await Promise.all([buildApp(config), buildApp(config)])
  t.teardown(() => Promise.all(apps.map((app) => app.close())))
  await Promise.all(apps.map((app) => app.ready()))

  for (const app of apps) {
    const ready = await app.inject('/readyz')
    t.equal(ready.statusCode, 200, 'each instance is ready')
  }
  const { rows } = await apps[0]!.db.query<{ version: string; n: string }>(
    'SELECT version::text, count(*)::text AS n FROM schemaversion WHERE version > 0 GROUP BY version ORDER BY version',
  )
  t.equal(rows.length, latestMigrationVersion(), 'every shipped migration is recorded')
  t.ok(
    rows.every((r) => r.n === '1'),
    'each recorded once',
  )
  t.equal(await databaseVersion(apps[0]!.db), latestMigrationVersion())
})

t.test(
  'the advisory lock serialises migrators: a non-idempotent migration has its effect once',
  async (t) => {
    const url = await createTestDatabase(t, { empty: true })
    // A migration that would run twice without the lock: it counts its own executions.
    const dir = mkdtempSync(path.join(tmpdir(), 'regent-migrations-'))
    writeFileSync(
      path.join(dir, '001.do.counter.sql'),
      'CREATE TABLE IF NOT EXISTS runs (n int); INSERT INTO runs VALUES (1); SELECT pg_sleep(0.3);',
    )
    writeFileSync(path.join(dir, '002.do.more.sql'), 'INSERT INTO runs VALUES (2);')
    const pools = Array.from({ length: 4 }, () => testPool(t, url, { max: 2 }))

    const results = await Promise.all(pools.map((pool) => migrate(pool, dir)))
    const { rows } = await pools[0]!.query<{ n: number }>('SELECT n FROM runs ORDER BY n')
    t.same(
      rows.map((r) => r.n),
      [1, 2],
      'each migration ran exactly once',
    )
    t.equal(results.flat().length, 2, 'the applied lists add up to the two migrations')
  },
)

t.test('a failing migration leaves nothing half-applied', async (t) => {
  const url = await createTestDatabase(t, { empty: true })
  const dir = mkdtempSync(path.join(tmpdir(), 'regent-migrations-'))
  writeFileSync(path.join(dir, '001.do.broken.sql'), 'CREATE TABLE half (n int); SELECT no_such_function();')
  const pool = testPool(t, url, { max: 1 })
  await t.rejects(migrate(pool, dir))
  const { rows } = await pool.query("SELECT to_regclass('half') AS t")
  t.equal(rows[0].t, null, 'the first statement was rolled back with the second')
  t.equal(await databaseVersion(pool), 0)
})
