import type { Queryable } from '../db/pool.js'
import { selectLastPulls, selectRepositoryActivity, selectSightings, upsertSightings } from './sql.js'

/**
 * What retention policies read: push and pull times from registry events, and the time Regent
 * first saw a tag (the stand-in where a registry sends no events).
 */

export type { Queryable } from '../db/pool.js'
export { type RegistryEventsConfig, RegistryEventsConfigSchema } from './config-schema.js'
export { registryEventErrors } from './errors.js'
export { registryEventRoutes } from './routes.js'

/** Event timestamps (the registry's clock). null: no such event recorded. */
export interface ActivityTimes {
  firstPushAt: Date | null
  lastPushAt: Date | null
  lastPullAt: Date | null
}

export interface RepositoryActivity {
  /** By manifest digest. A pull by tag counts for the digest it pulled too. */
  digests: Map<string, ActivityTimes>
  /** By tag. `digest`: the one last pushed onto the tag (by timestamp); null if only pulls were seen. */
  tags: Map<string, ActivityTimes & { digest: string | null }>
}

/** Every recorded digest and tag of one repository, in one query. */
export async function repositoryActivity(
  db: Queryable,
  registry: string,
  repository: string,
): Promise<RepositoryActivity> {
  const activity: RepositoryActivity = { digests: new Map(), tags: new Map() }
  for (const row of await selectRepositoryActivity(db, registry, repository)) {
    const times: ActivityTimes = {
      firstPushAt: row.first_push_at,
      lastPushAt: row.last_push_at,
      lastPullAt: row.last_pull_at,
    }
    if (row.kind === 'digest') activity.digests.set(row.key, times)
    else activity.tags.set(row.key, { ...times, digest: row.digest })
  }
  return activity
}

/**
 * Upserts sightings of (tag, digest) pairs (the first one wins) and returns first_seen_at for every
 * tag given: when Regent first saw the tag pointing at the digest it points at now.
 */
export async function recordSightings(
  db: Queryable,
  registry: string,
  repository: string,
  tags: { tag: string; digest: string }[],
): Promise<Map<string, Date>> {
  const seen = new Map<string, Date>()
  if (tags.length === 0) return seen
  // One row per tag (the first given wins, as it would across calls).
  const byTag = new Map<string, { tag: string; digest: string }>()
  for (const t of tags) if (!byTag.has(t.tag)) byTag.set(t.tag, t)
  // In tag order, so concurrent callers inside transactions insert in the same order (no deadlock).
  const given = [...byTag.values()].sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0))
  for (const row of await upsertSightings(db, registry, repository, given))
    seen.set(row.tag, row.first_seen_at)
  if (seen.size < given.length) {
    // Sighted by a concurrent call after this statement's snapshot: committed by now, read it.
    const missing = given.filter((t) => !seen.has(t.tag))
    for (const row of await selectSightings(db, registry, repository, missing)) {
      seen.set(row.tag, row.first_seen_at)
    }
  }
  return seen
}

/** When each digest was last pulled, by the registry's events (a weaker signal than usage). */
export async function lastPulls(
  db: Queryable,
  registry: string,
  repository: string,
  digests: string[],
): Promise<Map<string, Date>> {
  if (digests.length === 0) return new Map()
  return new Map(
    (await selectLastPulls(db, registry, repository, digests)).map((r) => [r.digest, r.last_pull_at]),
  )
}
