import type { Queryable } from '../db/pool.js'

/**
 * Keeps the most recently fetched manifests and configs of the Postgres content cache within
 * `keepBytes` and deletes the rest (at most `limit` rows per call). Anything deleted is fetched
 * again from its registry when next needed: it never changes for its digest. Returns how many went.
 */
export async function purgeContentCache(db: Queryable, keepBytes: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `WITH ranked AS (
       SELECT registry, repository, digest,
              sum(octet_length(bytes)) OVER (ORDER BY fetched_at DESC, registry, repository, digest) AS kept
       FROM content_cache
     ), doomed AS (
       SELECT registry, repository, digest FROM ranked WHERE kept > $1::bigint ORDER BY kept DESC LIMIT $2::integer
     )
     DELETE FROM content_cache c USING doomed d
     WHERE c.registry = d.registry AND c.repository = d.repository AND c.digest = d.digest`,
    [keepBytes, limit],
  )
  return rowCount ?? 0
}
