import { type Static, Type } from 'typebox'

/**
 * How long the operational tables keep what is finished. The purge job (queued every
 * `everyMinutes`, once across replicas) deletes finished jobs and delivered notifications past
 * their age or count, Postgres content-cache rows beyond `browse.cacheMemoryBytes`, and Slack
 * replay records past their window. The audit log is never purged.
 */
export const HousekeepingConfigSchema = Type.Object(
  {
    everyMinutes: Type.Integer({
      minimum: 1,
      maximum: 1440,
      default: 10,
      description: 'How often the purge runs, in minutes',
    }),
    jobsMaxAgeHours: Type.Integer({
      minimum: 1,
      default: 168,
      description: 'Finished jobs (succeeded, failed, cancelled) older than this are deleted',
    }),
    jobsMaxRows: Type.Integer({
      minimum: 1,
      default: 10000,
      description: 'Finished jobs kept at most, newest first',
    }),
    deliveriesMaxAgeHours: Type.Integer({
      minimum: 1,
      default: 720,
      description: 'Delivered and failed notifications older than this are deleted',
    }),
    deliveriesMaxRows: Type.Integer({
      minimum: 1,
      default: 10000,
      description: 'Delivered notifications kept at most, newest first',
    }),
    batchSize: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 5000,
      description: 'Rows per delete statement',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The purge that keeps operational tables bounded: finished jobs, notification deliveries, the content cache, Slack replay records; the audit log is never purged',
  },
)

export type HousekeepingConfig = Static<typeof HousekeepingConfigSchema>
