import fp from 'fastify-plugin'
import type pg from 'pg'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { migrate } from './migrate.js'
import { createPool, keepAlive } from './pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: pg.Pool
  }
}

export interface DbPluginOptions {
  config: Config
  /** A pool owned by the caller (tests, the migrate CLI); the plugin then leaves it open on close. */
  pool?: pg.Pool
  /** Apply pending migrations before the app is ready (default true). */
  migrate?: boolean
}

export default fp<DbPluginOptions>(
  async (app, options) => {
    const { config } = options
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
