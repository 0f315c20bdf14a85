import type { Job, JobLogger } from './types.js'

/** What a job handler is given and may throw: the contract between the worker and each job kind. */

export interface JobContext {
  /**
   * Aborted when this worker shuts down (after the grace period) or loses the job's lease; its
   * reason is a WorkerStoppingError or a LeaseLostError. Pass it to every outbound call. Once it
   * is aborted the handler's outcome is not written, whatever it returns.
   */
  signal: AbortSignal
  /** Which attempt this is, from 1. */
  attempt: number
  /** A child logger carrying the job's id, kind and registry. */
  log: JobLogger
  /** Stores a progress report on the job (GET /v1/jobs/{id} shows it). */
  progress(progress: unknown): Promise<void>
}

/**
 * Runs one attempt of a job. What it resolves with is stored as the job's result. A rejection is
 * retried with backoff up to the job's max attempts, unless the error has `retryable === false`
 * (see NonRetryableJobError); an error with a numeric `retryAfterMs` (a registry's Retry-After)
 * waits at least that long. Handlers must be idempotent: a job can run again after a crash.
 */
export type JobHandler = (job: Job, ctx: JobContext) => Promise<unknown>

/** A handler error that must not be retried (a 403 DENIED, a registry with deletes disabled). */
export class NonRetryableJobError extends Error {
  readonly retryable = false
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'NonRetryableJobError'
  }
}

/** The abort reason when another worker took the job over after our lease ran out. */
export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`the lease on job ${jobId} was lost`)
    this.name = 'LeaseLostError'
  }
}

/** The abort reason when the worker stops and the grace period is over. */
export class WorkerStoppingError extends Error {
  constructor() {
    super('the worker is stopping')
    this.name = 'WorkerStoppingError'
  }
}
