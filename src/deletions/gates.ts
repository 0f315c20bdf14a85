import type pg from 'pg'
import type { Job } from '../jobs/index.js'

/**
 * How another feature has a say in deletions without deletions knowing it: garbage collection
 * makes executions wait while it sweeps, refuses restores meanwhile, and schedules itself when an
 * execution deleted something. A feature adds its gate with `app.deletions.addGate`.
 */
export interface DeletionGate {
  /**
   * First thing in an execution job. To make the job wait it throws an error with `retryAfterMs`
   * (having given the attempt back): the request stays queued.
   */
  beforeExecution?(job: Job): Promise<void>
  /** Why a restore into the registry must wait now; undefined when it may go ahead. */
  restoreBlocked?(registry: string): Promise<string | undefined>
  /**
   * In the transaction that finishes an execution that deleted something, before its audit event
   * (a GC transaction locks its run row before the audit chain head: keep that order).
   */
  deleted?(client: pg.PoolClient, registry: string): Promise<void>
}
