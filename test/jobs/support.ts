import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { pino } from 'pino'
import { Value } from 'typebox/value'
import { type JobsConfig, JobsConfigSchema } from '../../src/jobs/config-schema.js'
import { Worker, type WorkerOptions } from '../../src/jobs/worker.js'
import { adminQuery, databaseUrl, type TestContext } from '../helper.js'

export const silentLog = pino({ level: 'silent' })

/** The config defaults with test-sized timings on top. */
export function jobsConfig(overrides: Partial<JobsConfig> = {}): JobsConfig {
  const config = Value.Default(JobsConfigSchema, { ...overrides }) as JobsConfig
  if (!Value.Check(JobsConfigSchema, config)) throw new Error('test jobs config does not validate')
  return config
}

export interface JobsDatabase {
  url: string
  /** A pool of its own: one per simulated replica. */
  pool(max?: number): pg.Pool
  /** A started worker, stopped at teardown (before its pool ends and the database is dropped). */
  worker(options: Omit<WorkerOptions, 'pool' | 'log'> & { pool?: pg.Pool }): Promise<Worker>
}

/**
 * A clone of the migrated template for one test. Unlike createTestDatabase, everything opened on it
 * is closed by one teardown in the right order: workers stop, pools end, then the database is
 * dropped (tap runs teardowns first-in first-out, so separate ones would drop it under live workers).
 */
export async function jobsDatabase(t: TestContext): Promise<JobsDatabase> {
  const template = process.env.REGENT_TEST_TEMPLATE
  if (!template) throw new Error('run the tests with `npm test`: they need the runner database')
  const name = `regent_t_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${template}`)
  const url = databaseUrl(name)
  const pools: pg.Pool[] = []
  const workers: Worker[] = []
  t.teardown(async () => {
    await Promise.all(workers.map((w) => w.stop()))
    await Promise.all(pools.map((p) => p.end()))
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })
  const pool = (max = 10) => {
    const p = new pg.Pool({ connectionString: url, max })
    p.on('error', () => {})
    pools.push(p)
    return p
  }
  return {
    url,
    pool,
    async worker(options) {
      const worker = new Worker({ ...options, pool: options.pool ?? pool(), log: silentLog })
      workers.push(worker)
      await worker.start()
      return worker
    },
  }
}

export async function jobState(
  pool: pg.Pool,
  id: string,
): Promise<{ state: string; attempts: number; locked_by: string | null; last_error: string | null }> {
  const { rows } = await pool.query('SELECT state, attempts, locked_by, last_error FROM jobs WHERE id = $1', [
    id,
  ])
  return rows[0]
}
