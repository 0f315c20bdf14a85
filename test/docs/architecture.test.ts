import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { buildApp, PLUGINS } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

/**
 * docs/architecture.md describes the plugins and job kinds as they are: every plugin the app
 * registers and every job kind a feature defines is named there, so the page cannot fall behind a
 * new feature unnoticed.
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
const page = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8')

t.test('every plugin app.ts registers is on the architecture page', async (t) => {
  t.ok(PLUGINS.length >= 20, `${PLUGINS.length} plugins`)
  for (const plugin of PLUGINS) {
    const name = (plugin as unknown as Record<symbol, { name?: string } | undefined>)[
      Symbol.for('plugin-meta')
    ]?.name
    t.ok(name, 'the plugin declares its name')
    if (name) t.match(page, `\`${name}\``, `${name} is named on the page`)
  }
})

t.test('every job kind is on the architecture page', async (t) => {
  // The routes and job kinds are all there without a database: the pool is never asked.
  const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' })
  const app = await buildApp(loadConfig({}), { pool, migrate: false, background: false })
  t.teardown(async () => {
    await app.close()
    await pool.end()
  })
  await app.ready()
  const kinds = app.jobs.names
  t.ok(kinds.length >= 7, `${kinds.length} job kinds defined`)
  for (const kind of kinds) t.match(page, `\`${kind}\``, `${kind} is named on the page`)
})
