import type pg from 'pg'
import type { Job } from '../jobs/index.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { deferJob, scheduleCoalescedGc } from './queue.js'
import { gcBlocksDeletions } from './sql.js'

/**
 * What the deletion job handler asks of GC (src/deletions/execute.ts): wait while a GC of the
 * registry runs, and schedule the coalesced GC once something was deleted.
 */
export interface DeletionGcHooks {
  /**
   * Called first thing in a deletion job. While a GC that deletes runs on the job's registry it
   * gives the attempt back and throws an error with `retryAfterMs`: the queue runs the job again
   * later, the request stays `queued`, and waiting never uses up its attempts.
   */
  waitWhileCollecting(job: Job): Promise<void>
  /**
   * Called in the transaction that finishes a deletion that deleted at least one item, before
   * that transaction's audit event: queues or pushes back the registry's coalesced GC, if the
   * registry has a `gc` section.
   */
  deletionsFinished(client: pg.PoolClient, registry: string): Promise<void>
}

export function deletionGcHooks(options: {
  pool: pg.Pool
  registries: RegistrySet
  /** How long a deletion waits before it looks again. */
  retryAfterMs: number
}): DeletionGcHooks {
  const gcOf = (registry: string) =>
    options.registries.list().find((r) => r.config.name === registry)?.config.gc
  return {
    async waitWhileCollecting(job) {
      if (!job.registry || !gcOf(job.registry)) return
      if (!(await gcBlocksDeletions(options.pool, job.registry))) return
      throw await deferJob(
        options.pool,
        job,
        `waiting: a garbage collection of ${job.registry} is running`,
        options.retryAfterMs,
      )
    },
    async deletionsFinished(client, registry) {
      const gc = gcOf(registry)
      if (gc) await scheduleCoalescedGc(client, registry, gc.quietPeriodMs)
    },
  }
}
