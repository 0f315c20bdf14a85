import pg from 'pg'
import type { Config } from '../config.js'

export type Pool = pg.Pool
export type PoolClient = pg.PoolClient
/** Anything that can run a query: the pool itself or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient

export function createPool(url: string, options: Config['database']): pg.Pool {
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
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would crash the
  // process. The pool drops that client and the next query gets a fresh one.
  pool.on('error', () => {})
  return pool
}
