import type pg from 'pg'
import type { DeletionGate } from '../deletions/index.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { deferJob, scheduleCoalescedGc } from './queue.js'
import { gcBlocksDeletions } from './sql.js'

/**
 * Garbage collection's say in deletions: an execution waits while a GC that deletes runs on its
 * registry (the job gives its attempt back and comes again later: waiting never uses up its
 * attempts); a restore waits too (pushing manifests back while the collector sweeps could reference
 * blobs it is deleting); and an execution that deleted something queues or pushes back the
 * registry's coalesced GC, if the registry has a `gc` section.
 */
export function gcDeletionGate(options: {
  pool: pg.Pool
  registries: RegistrySet
  /** How long a deletion waits before it looks again. */
  retryAfterMs: number
}): DeletionGate {
  const gcOf = (registry: string) =>
    options.registries.list().find((r) => r.config.name === registry)?.config.gc
  return {
    async beforeExecution(job) {
      if (!job.registry || !gcOf(job.registry)) return
      if (!(await gcBlocksDeletions(options.pool, job.registry))) return
      throw await deferJob(
        options.pool,
        job,
        `waiting: a garbage collection of ${job.registry} is running`,
        options.retryAfterMs,
      )
    },
    async restoreBlocked(registry) {
      if (!(await gcBlocksDeletions(options.pool, registry))) return undefined
      return `a garbage collection of ${registry} is running; try again when it ends`
    },
    async deleted(client, registry) {
      const gc = gcOf(registry)
      if (gc) await scheduleCoalescedGc(client, registry, gc.quietPeriodMs)
    },
  }
}
