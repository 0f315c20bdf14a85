import { type Static, Type } from 'typebox'

/**
 * The `jobs` section of the config: leases, polling, retries and concurrency of the job worker.
 * The lease bounds crash recovery: a dead worker's jobs are claimed again within `leaseMs`
 * plus one poll.
 */
export const JobsConfigSchema = Type.Object(
  {
    leaseMs: Type.Integer({
      minimum: 500,
      maximum: 3_600_000,
      default: 60000,
      description:
        "How long a claim holds a job without a heartbeat: a dead worker's jobs are free again after it",
    }),
    heartbeatMs: Type.Integer({
      minimum: 100,
      maximum: 900_000,
      default: 15000,
      description: 'How often a worker renews the leases it holds; keep it well below leaseMs (leaseMs / 4)',
    }),
    pollMs: Type.Integer({
      minimum: 50,
      maximum: 600_000,
      default: 5000,
      description: 'How often a worker looks for due jobs when no NOTIFY arrives (retries, expired leases)',
    }),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 4,
      description: 'Jobs one worker process runs at once',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 5,
      description: 'Attempts a job gets before it fails for good (for jobs enqueued without their own)',
    }),
    backoffBaseMs: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'Ceiling of the first retry delay; it doubles per attempt (full jitter)',
    }),
    backoffMaxMs: Type.Integer({ minimum: 1, default: 300000, description: 'Largest retry delay' }),
    registryConcurrency: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 4,
      description: 'Most jobs of one registry running at once, across all replicas',
    }),
    shutdownGraceMs: Type.Integer({
      minimum: 0,
      maximum: 600_000,
      default: 8000,
      description: 'On shutdown, how long running jobs may finish before they are aborted and released',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'The job queue in Postgres and its worker: leases, polling, retries and concurrency',
  },
)

export type JobsConfig = Static<typeof JobsConfigSchema>
