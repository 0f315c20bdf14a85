import { randomBytes } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { type AppOverrides, buildApp } from '../src/app.js'
import { type Config, loadConfig } from '../src/config.js'

/** The tap test object, whatever tap's exported class is named in this version. */
export interface TestContext {
  teardown(fn: () => unknown): void
}

const adminUrl = process.env.REGENT_TEST_ADMIN_URL
const template = process.env.REGENT_TEST_TEMPLATE

function requireRunner(): { adminUrl: string; template: string } {
  if (!adminUrl || !template) {
    throw new Error(
      'tests need the database the runner starts: run them with `npm test [-- test/file.test.ts]`',
    )
  }
  return { adminUrl, template }
}

export function databaseUrl(name: string): string {
  const url = new URL(requireRunner().adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Runs one statement on the server's maintenance database (CREATE/DROP DATABASE and the like). */
export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: requireRunner().adminUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** Databases cloned from the migrated template: an app built on one has no migration to apply. */
const clones = new Set<string>()

/**
 * A database of the test's own: a clone of the migrated template (or empty, for migration tests),
 * dropped at teardown. Returns its URL.
 */
export async function createTestDatabase(t: TestContext, options: { empty?: boolean } = {}): Promise<string> {
  const { template } = requireRunner()
  const name = `regent_t_${randomBytes(6).toString('hex')}`
  await adminQuery(options.empty ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${template}`)
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  const url = databaseUrl(name)
  if (!options.empty) clones.add(url)
  return url
}

/**
 * A pool on a test database, ended at teardown. tap runs teardowns first in, first out, so the
 * database (registered earlier) is dropped WITH (FORCE) before the pool ends, which terminates its
 * idle connections: expected, so their 'error' events are swallowed instead of failing the test.
 */
export function testPool(
  t: TestContext,
  url: string,
  options: Omit<pg.PoolConfig, 'connectionString'> = {},
): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, ...options })
  pool.on('error', () => {})
  t.teardown(() => pool.end())
  return pool
}

export interface BuildOptions extends AppOverrides {
  /** Config keys to set, as a config file would. */
  config?: Record<string, unknown>
  /** Runs before app.ready(): register test-only routes or hooks here. */
  beforeReady?: (app: FastifyInstance) => void | Promise<void>
  /** Use this database instead of a fresh clone of the template. */
  databaseUrl?: string
}

/** The HS256 secret test apps trust unless a test configures other keys. */
export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef0123456789abcdef'

export async function testConfig(t: TestContext, options: BuildOptions = {}): Promise<Config> {
  const url = options.databaseUrl ?? (await createTestDatabase(t))
  return loadConfig(
    {},
    // No job worker unless a test asks for one: most tests look at states a worker would move on.
    {
      databaseUrl: url,
      logLevel: 'silent',
      auth: { jwtSecret: TEST_JWT_SECRET },
      worker: false,
      ...options.config,
    },
  )
}

export interface TokenClaims {
  sub: string
  groups?: string[]
  roles?: string[]
  [claim: string]: unknown
}

/** A token the test app accepts: HS256 with the test secret, valid for an hour. */
export function signToken(claims: TokenClaims, options: { expiresInMs?: number } = {}): string {
  const sign = createSigner({
    key: TEST_JWT_SECRET,
    algorithm: 'HS256',
    expiresIn: options.expiresInMs ?? 3_600_000,
  })
  return sign(claims)
}

/** Headers for `inject` carrying a fresh token for these claims. */
export function authHeaders(claims: TokenClaims, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${signToken(claims)}`, ...extra }
}

/**
 * Builds the app on a database of its own, ready for `inject`, closed at teardown. On a clone of the
 * template it skips the migration check (the template is migrated); on any other database it
 * migrates as the service would, unless `migrate` says otherwise.
 */
export async function build(t: TestContext, options: BuildOptions = {}): Promise<FastifyInstance> {
  const config = await testConfig(t, options)
  const app = await buildApp(config, { migrate: !clones.has(config.databaseUrl ?? ''), ...options })
  t.teardown(() => app.close())
  await options.beforeReady?.(app)
  await app.ready()
  return app
}
