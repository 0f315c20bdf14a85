export { type Cron, CronError, parseCron } from '../lib/cron.js'
export {
  type GcCommand,
  type GcConfig,
  GcConfigSchema,
  type GcExecutor,
  type GcHook,
} from './config-schema.js'
export { gcDeletionGate } from './deletion-gate.js'
export { endRun } from './end-run.js'
export { gcErrors } from './errors.js'
export { type GcJobDeps, gcJob } from './job.js'
export { eligibleShare, GcOutputParser, type GcReport, parseGcOutput } from './output.js'
export {
  type CoalesceOutcome,
  deferJob,
  GC_CHANNEL,
  GC_MAX_ATTEMPTS,
  GC_RUN,
  GcWaitError,
  scheduleCoalescedGc,
} from './queue.js'
export { gcRoutes } from './routes.js'
export { type FiredSlot, GcScheduler } from './scheduler.js'
export { GcRunSchema, type GcRunView } from './schemas.js'
export { GcService, toRunView } from './service.js'
export type { GcRunRow, GcState, GcStep, GcTrigger } from './sql.js'
