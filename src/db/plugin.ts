import fp from 'fastify-plugin'
import type pg from 'pg'
import type { FeatureOptions } from '../app-options.js'
import { errors } from '../errors.js'
import { migrate } from './migrate.js'
import { createPool, keepAlive } from './pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: pg.Pool
  }
}

/**
 * The pool (or the caller's: tests and the migrate CLI pass their own, left open on close), with
 * pending migrations applied before the app is ready unless the caller says not to.
 */
export default fp<FeatureOptions>(
  async (app, { config, overrides: options }) => {
    if (!options.pool && !config.databaseUrl) {
      throw new errors.UNAVAILABLE(
        'no database: set DATABASE_URL, or start through server.ts for the embedded one',
      )
    }
    const pool = options.pool ?? createPool(config.databaseUrl!, config.database, app.log)
    if (options.pool) keepAlive(options.pool, app.log)
    app.decorate('db', pool)
    if (!options.pool) app.addHook('onClose', async () => pool.end())

    if (options.migrate !== false) {
      const applied = await migrate(pool)
      if (applied.length > 0)
        app.log.info({ migrations: applied.map((m) => m.version) }, 'applied migrations')
    }
  },
  { name: 'db' },
)
