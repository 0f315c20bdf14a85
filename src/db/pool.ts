import pg from 'pg'
import type { Config } from '../config.js'

export type Pool = pg.Pool
export type PoolClient = pg.PoolClient
/** Anything that can run a query: the pool itself or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient

interface Log {
  warn(obj: object, msg?: string): void
}

export function createPool(url: string, options: Config['database'], log?: Log): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    idleTimeoutMillis: options.idleTimeoutMs,
    // A runaway statement must not hold a connection forever; 0 means no limit.
    statement_timeout: options.statementTimeoutMs || undefined,
    // Sessions left "idle in transaction" by a bug are killed rather than holding locks (design.md:
    // no transaction is held open across a registry call).
    idle_in_transaction_session_timeout: 60_000,
    application_name: 'regent',
  })
  keepAlive(pool, log)
  return pool
}

/**
 * A connection that drops (the server restarts, an admin terminates the backend, the network goes)
 * emits 'error' on its client, and an 'error' event nobody listens to kills the process. The pool
 * listens only while a client is idle in it; a client checked out by a transaction or a held
 * session has nobody. So every client gets a listener of its own for its whole life: the query it
 * was running rejects and fails its operation, the client is dropped when released, and the
 * process carries on. Callers holding a client for long may add their own listener besides.
 */
export function keepAlive(pool: pg.Pool, log?: Log): void {
  pool.on('error', (err) => log?.warn({ err }, 'idle database connection lost'))
  pool.on('connect', (client) => {
    client.on('error', (err) => log?.warn({ err }, 'database connection lost'))
  })
}
