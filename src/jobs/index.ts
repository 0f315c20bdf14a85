export { type JobsConfig, JobsConfigSchema } from './config-schema.js'
export { jobErrors } from './errors.js'
export {
  type JobContext,
  type JobHandler,
  LeaseLostError,
  NonRetryableJobError,
  WorkerStoppingError,
} from './handler.js'
export { type JobKind, JobKinds } from './kinds.js'
export { jobRoutes } from './routes.js'
export { type JobView, JobViewSchema } from './schemas.js'
export { type JobVisibility, jobView, viewJob } from './service.js'
export {
  CLAIM_LOCK_KEY,
  type ClaimOptions,
  cancelJob,
  claimJobs,
  completeJob,
  type EnqueueInput,
  type EnqueueResult,
  enqueueJob,
  type FailInput,
  type FailResult,
  failExpiredJobs,
  failJob,
  getJob,
  giveBackAttempt,
  heartbeat,
  type JobFilters,
  listJobs,
  type PurgeOptions,
  purgeFinishedJobs,
  releaseJobs,
  runningJobsOf,
  updateProgress,
} from './sql.js'
export { JOB_STATES, JOBS_CHANNEL, type Job, type JobLogger, type JobState } from './types.js'
export { Worker, type WorkerOptions } from './worker.js'
