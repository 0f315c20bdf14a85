export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type JobState = (typeof JOB_STATES)[number]

/** The NOTIFY channel an enqueue (and a release) signals on; the payload is the job's kind. */
export const JOBS_CHANNEL = 'regent_jobs'

/** A row of the `jobs` table. */
export interface Job {
  id: string
  kind: string
  payload: unknown
  state: JobState
  /** Attempts started so far, this one included while the job runs. */
  attempts: number
  maxAttempts: number
  runAt: Date
  /** The worker holding the lease; set exactly while `running`. */
  lockedBy: string | null
  lockedUntil: Date | null
  lastError: string | null
  progress: unknown
  result: unknown
  registry: string | null
  uniqueKey: string | null
  createdAt: Date
  updatedAt: Date
  finishedAt: Date | null
}

/**
 * The logger the worker writes to: pino's (and Fastify's `app.log`) shape, object first. Each job
 * gets a child with its id, kind and registry.
 */
export interface JobLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  child(bindings: Record<string, unknown>): JobLogger
}
