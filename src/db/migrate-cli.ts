import { ConfigError, loadConfig } from '../config.js'
import { migrate } from './migrate.js'
import { createPool } from './pool.js'

/** `npm run migrate`: for pipelines that migrate before they deploy. Needs DATABASE_URL. */
async function main() {
  const config = loadConfig()
  if (!config.databaseUrl) {
    process.stderr.write('regent migrate: DATABASE_URL is not set\n')
    process.exitCode = 2
    return
  }
  const pool = createPool(config.databaseUrl, config.database)
  try {
    const applied = await migrate(pool)
    process.stdout.write(
      applied.length
        ? `applied: ${applied.map((m) => `${m.version} ${m.name}`).join(', ')}\n`
        : 'up to date\n',
    )
  } finally {
    await pool.end()
  }
}

main().catch((err) => {
  process.stderr.write(`regent migrate: ${err instanceof ConfigError ? err.message : (err as Error).stack}\n`)
  process.exitCode = 1
})
