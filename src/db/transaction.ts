import type pg from 'pg'

/**
 * Runs `work` inside BEGIN/COMMIT on one client and rolls back if it throws. Callers pass the
 * client on to the SQL functions they compose, so several statements (a state change and its audit
 * event, say) commit together or not at all.
 *
 * A ROLLBACK that fails means the connection itself is gone (the server restarted, the backend was
 * terminated): the client is then destroyed on release instead of going back to the pool, where
 * the next caller would get a dead connection.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
      broken = rollbackFailed
    })
    throw err
  } finally {
    client.release(broken)
  }
}
