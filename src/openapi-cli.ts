import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { stringify } from 'yaml'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'

/**
 * `npm run openapi` writes openapi.yaml from the route schemas; `--check` exits 1 when the committed
 * file differs (CI's drift check). No database is needed: the pool is never asked for a connection.
 */
const committed = fileURLToPath(new URL('../openapi.yaml', import.meta.url))
// `--file PATH` compares with (or writes) another file: the drift test uses it on a copy.
const fileArg = process.argv.indexOf('--file')
const target = fileArg > 0 && process.argv[fileArg + 1] ? process.argv[fileArg + 1]! : committed

async function main() {
  const config = loadConfig({})
  const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' })
  const app = await buildApp(config, { pool, migrate: false, background: false })
  await app.ready()
  const yaml = stableYaml(app.swagger() as OpenApiDocument)
  await app.close()
  await pool.end()

  if (process.argv.includes('--check')) {
    let committed = ''
    try {
      committed = readFileSync(target, 'utf8')
    } catch {}
    if (committed !== yaml) {
      process.stderr.write(
        'openapi.yaml is out of date with the routes: run `npm run openapi` and commit it\n',
      )
      process.exitCode = 1
      return
    }
    process.stdout.write('openapi.yaml matches the routes\n')
    return
  }
  writeFileSync(target, yaml)
  process.stdout.write(`wrote ${target}\n`)
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`)
  process.exitCode = 1
})

interface OpenApiDocument {
  paths?: Record<string, unknown>
  components?: { schemas?: Record<string, unknown> }
}

/**
 * The document with its paths and component schemas in name order: the contract must not change
 * with the order in which the features happen to register their routes.
 */
function stableYaml(document: OpenApiDocument): string {
  const sorted = (record: Record<string, unknown> | undefined) =>
    record && Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  const paths = sorted(document.paths)
  const schemas = sorted(document.components?.schemas)
  return stringify({
    ...document,
    ...(paths ? { paths } : {}),
    ...(schemas ? { components: { ...document.components, schemas } } : {}),
  })
}
