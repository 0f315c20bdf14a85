#!/usr/bin/env node
// `npm test [-- tap args]`: builds, starts one PostgreSQL for the whole run (embedded, or the
// server in DATABASE_URL), migrates a template database once, and runs tap. Each test file then
// clones the template (test/helper.ts), which is much faster than migrating per file.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'

const root = path.resolve(import.meta.dirname, '..')
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

// The same build the image runs (compiled src/ and the console's static files).
run('npm', ['run', '-s', 'build'])
// Processes the tests spawn and kill (test/*/fixtures) run as compiled JavaScript: through tap's
// TypeScript loader each one spent seconds compiling src/ before it could start. tsc emits every
// file a fixture imports, so they get their own compiled src/ under .test-dist/ (dist/ stays the
// image's build, free of test code). Not type-checked here: `npm run typecheck` covers test/.
run('npx', ['tsc', '-p', 'tsconfig.fixtures.json'])
run('node', ['scripts/copy-ui.mjs', '.test-dist/src/ui/public'])

const { startEmbeddedPostgres } = await import(path.join(root, 'dist/db/embedded.js'))
const { migrate } = await import(path.join(root, 'dist/db/migrate.js'))

const quiet = { info() {}, warn: (o, m) => console.error(m, o), debug() {} }
let embedded
let dataDir
let adminUrl = process.env.DATABASE_URL
if (!adminUrl) {
  // /tmp, not the checkout: as root the server runs as the unprivileged `postgres` user, which must
  // be able to reach its folder whatever the checkout's permissions are.
  dataDir = mkdtempSync(path.join(tmpdir(), 'regent-test-pg-'))
  embedded = await startEmbeddedPostgres({ dataDir, port: 0, log: quiet })
  adminUrl = embedded.url
}

const template = `regent_template_${process.pid}`
const admin = new pg.Client({ connectionString: adminUrl })
await admin.connect()
await admin.query(`CREATE DATABASE ${template}`)
const templateUrl = new URL(adminUrl)
templateUrl.pathname = `/${template}`
const pool = new pg.Pool({ connectionString: templateUrl.toString(), max: 1 })
await migrate(pool)
await pool.end()

const env = {
  ...process.env,
  REGENT_TEST_ADMIN_URL: adminUrl,
  REGENT_TEST_TEMPLATE: template,
  REGENT_TEST_EMBEDDED: embedded ? '1' : '',
  // tap's ts-node loader transpiles each test process's imports (all of src/) on start; with
  // tsconfig.tap.json it does so through swc, about 1.5 s faster per test file than TypeScript.
  // Set here because tap's own look-up of that file did not reach the test processes' loader.
  TS_NODE_PROJECT: path.join(root, 'tsconfig.tap.json'),
}
const tap = spawn('npx', ['tap', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env })
const code = await new Promise((resolve) => tap.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))))

await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => {})
await admin.end()
await embedded?.stop()
if (dataDir) rmSync(dataDir, { recursive: true, force: true })
process.exit(code)
