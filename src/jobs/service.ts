import { isAdmin, type Principal } from '../auth/principal.js'
import type { Queryable } from '../db/pool.js'
import { errors } from '../errors.js'
import { jobErrors } from './errors.js'
import type { JobView } from './schemas.js'
import { getJob } from './sql.js'
import type { Job } from './types.js'

/** A job as the API shows it: state and progress, never its payload or the worker holding it. */
export function jobView(job: Job): JobView {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    registry: job.registry,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    progress: job.progress ?? null,
    lastError: job.lastError,
    runAt: job.runAt.toISOString(),
    leaseExpiresAt: job.lockedUntil?.toISOString() ?? null,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    finishedAt: job.finishedAt?.toISOString() ?? null,
  }
}

/** Whether a non-admin may read a job: the rule of the feature that owns its kind. */
export type JobVisibility = (principal: Principal, job: Job) => Promise<boolean>

/**
 * A job, for those who may see what it acts on (a requester polls the deletion it queued). Anyone
 * else gets the same 404 as for a job that does not exist.
 */
export async function viewJob(
  db: Queryable,
  principal: Principal,
  id: string,
  visible: JobVisibility,
): Promise<JobView> {
  if (principal.roles.length === 0) throw new errors.FORBIDDEN('reading jobs needs at least the viewer role')
  const job = await getJob(db, id)
  if (!job) throw new jobErrors.JOB_NOT_FOUND(id)
  if (!isAdmin(principal) && !(await visible(principal, job))) throw new jobErrors.JOB_NOT_FOUND(id)
  return jobView(job)
}
