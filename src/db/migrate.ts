import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import Postgrator from 'postgrator'

/**
 * The `migrations/` folder beside package.json, found by walking up from this module: the same
 * code runs from src/ (tests), dist/ (the image) and .bench-dist/src/ (benchmarks).
 */
export const MIGRATIONS_DIR = findMigrationsDir(path.dirname(fileURLToPath(import.meta.url)))

function findMigrationsDir(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'migrations'))) {
      return path.join(dir, 'migrations')
    }
    if (path.dirname(dir) === dir) throw new Error(`no migrations folder above ${start}`)
  }
}

export const SCHEMA_TABLE = 'schemaversion'

/**
 * Every replica applies migrations at start. The advisory lock makes the second replica wait for
 * the first and then find nothing left to do, instead of both running the same DDL. The number is
 * arbitrary but fixed: it is the lock's identity across processes.
 */
const MIGRATION_LOCK_KEY = 7_462_010_001

export interface AppliedMigration {
  version: number
  name: string
}

export async function migrate(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<AppliedMigration[]> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
    try {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db')
      const postgrator = new Postgrator({
        migrationPattern: `${dir}/*.do.*.sql`,
        driver: 'pg',
        database: rows[0]!.db,
        schemaTable: SCHEMA_TABLE,
        // A multi-statement script sent as one simple query runs as one implicit transaction in
        // Postgres, so a failing migration leaves nothing half-applied.
        execQuery: (query) => client.query(query),
      })
      const applied = await postgrator.migrate()
      return applied.map((m) => ({ version: m.version, name: m.name }))
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
    }
  } finally {
    client.release()
  }
}

/** The highest version among the migration files shipped with this build. */
export function latestMigrationVersion(dir = MIGRATIONS_DIR): number {
  let max = 0
  for (const file of readdirSync(dir)) {
    const match = /^(\d+)\.do\./.exec(file)
    if (match) max = Math.max(max, Number(match[1]))
  }
  return max
}

/** The version the database is at, or 0 before the first migration. */
export async function databaseVersion(db: Pick<pg.Pool, 'query'>): Promise<number> {
  const exists = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    SCHEMA_TABLE,
  ])
  if (!exists.rows[0]?.present) return 0
  const { rows } = await db.query<{ version: string | null }>(
    `SELECT max(version)::text AS version FROM ${SCHEMA_TABLE}`,
  )
  return Number(rows[0]?.version ?? 0)
}
