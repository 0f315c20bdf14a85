import type { Queryable } from '../db/pool.js'

/**
 * Remembers a verified signature; false when it was already there (a replayed request). The row
 * conflict is the check, so two replicas receiving the same request cannot both accept it.
 */
export async function rememberSignature(client: Queryable, signature: string): Promise<boolean> {
  const { rowCount } = await client.query(
    'INSERT INTO slack_request_signatures (signature) VALUES ($1::text) ON CONFLICT (signature) DO NOTHING',
    [signature],
  )
  return rowCount === 1
}

/** Forgets signatures older than the window: their timestamps would be refused anyway. */
export async function purgeSignatures(client: Queryable, olderThanSec: number): Promise<number> {
  const { rowCount } = await client.query(
    `DELETE FROM slack_request_signatures WHERE received_at < now() - make_interval(secs => $1::integer)`,
    [olderThanSec],
  )
  return rowCount ?? 0
}
