import type pg from 'pg'
import { type AuditActor, appendAuditEvent } from '../audit/index.js'
import { groupBy } from '../lib/group-by.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { type ItemRow, markRestored } from './items-sql.js'
import { executionRank } from './plan.js'
import { withRepositoryLock } from './repository-lock.js'
import type { DeletionRow } from './sql.js'

/**
 * Puts deleted manifests back and re-points their tags, while the registry still holds the blobs
 * (until its next GC). A restore never clobbers: a tag that points at another image now (pushed
 * again since the deletion) is left where it is, and the item ends `tag_taken` naming both digests;
 * only an admin's explicit `force` re-points it. Children before the index that lists them, so the
 * index is whole when its tag reappears. Writes go through the repository's one-writer lock.
 */
export interface RestoreSummary {
  restored: number
  tagTaken: number
  forced: number
}

export async function restoreItems(
  deps: { pool: pg.Pool; registries: RegistrySet },
  request: DeletionRow,
  items: ItemRow[],
  actor: AuditActor,
  force: boolean,
): Promise<RestoreSummary> {
  const { client } = deps.registries.get(request.registry)
  const summary: RestoreSummary = { restored: 0, tagTaken: 0, forced: 0 }
  const byRepository = groupBy(items, (item) => item.repository)
  for (const [repository, repoItems] of [...byRepository].sort(([a], [b]) => (a < b ? -1 : 1))) {
    await withRepositoryLock(deps.pool, request.registry, repository, undefined, async (session) => {
      // The reverse of execution: what is listed before what lists it.
      const ordered = [...repoItems].sort(
        (a, b) => executionRank(rankable(b)) - executionRank(rankable(a)) || a.position - b.position,
      )
      for (const item of ordered) {
        session.assertHeld()
        const bytes = item.restore_manifest!
        const mediaType = item.restore_media_type!
        if (item.action !== 'untag') await client.putManifest(repository, item.digest, mediaType, bytes)
        const restoredTags: string[] = []
        const taken: { tag: string; digest: string }[] = []
        const forced: { tag: string; digest: string }[] = []
        for (const tag of item.restore_tags ?? []) {
          const now = await client.headManifest(repository, tag)
          if (now && now.digest !== item.digest && !force) {
            taken.push({ tag, digest: now.digest })
            continue
          }
          if (now && now.digest !== item.digest) forced.push({ tag, digest: now.digest })
          if (now?.digest !== item.digest) await client.putManifest(repository, tag, mediaType, bytes)
          restoredTags.push(tag)
        }
        const outcome = taken.length > 0 ? 'tag_taken' : forced.length > 0 ? 'forced' : 'restored'
        const note =
          taken.length > 0
            ? `${taken.map((t) => `${repository}:${t.tag} points at ${t.digest} now`).join(', ')} (pushed again since the deletion of ${item.digest}); left alone`
            : forced.length > 0
              ? `re-pointed by force from ${forced.map((t) => `${t.tag}@${t.digest}`).join(', ')}`
              : null
        await session.transaction(async (db) => {
          if (!(await markRestored(db, item, { outcome, note }))) return
          await appendAuditEvent(db, {
            ...actor,
            action: 'manifest.restored',
            outcome,
            registry: request.registry,
            repository,
            tag: item.tag,
            digest: item.digest,
            deletionId: request.id,
            details: {
              tags: restoredTags,
              ...(taken.length > 0 ? { tagsTaken: taken } : {}),
              ...(forced.length > 0 ? { forcedFrom: forced } : {}),
            },
          })
        })
        summary[outcome === 'tag_taken' ? 'tagTaken' : outcome]++
      }
    })
  }
  return summary
}

function rankable(item: ItemRow) {
  return { action: item.action, mediaType: item.restore_media_type ?? item.media_type }
}
