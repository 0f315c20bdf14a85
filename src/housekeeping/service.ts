import type pg from 'pg'
import type { Counter } from 'prom-client'
import { purgeReplayRecords } from '../chatops/index.js'
import { purgeFinishedJobs } from '../jobs/index.js'
import type { JobLogger } from '../jobs/types.js'
import { purgeDeliveries } from '../notifications/index.js'
import { purgeContentCache } from '../registries/content-cache-sql.js'
import type { HousekeepingConfig } from './config-schema.js'

/** The purge job's kind; its result is the rows it deleted per table. */
export const HOUSEKEEPING_PURGE = 'housekeeping.purge'

export interface PurgeCounts {
  jobs: number
  deliveries: number
  contentCache: number
  slackReplays: number
}

/** Rounds of `batchSize` rows per table and run: a backlog is worked off over a few runs. */
const MAX_ROUNDS = 20
const HOUR = 3_600_000

/**
 * Keeps the operational tables bounded: what is finished goes once it is old enough or beyond
 * the count kept, in short statements (one batch each), so a purge never holds locks for long.
 */
export class Housekeeping {
  constructor(
    private readonly pool: pg.Pool,
    private readonly config: HousekeepingConfig,
    /** The content cache's budget in Postgres: the same as in memory (browse.cacheMemoryBytes). */
    private readonly contentCacheBytes: number,
    private readonly log: Pick<JobLogger, 'info'>,
    private readonly purged?: Counter<'table'>,
  ) {}

  async purge(now: Date = new Date()): Promise<PurgeCounts> {
    const limit = this.config.batchSize
    const counts: PurgeCounts = {
      jobs: await this.drain((n) =>
        purgeFinishedJobs(this.pool, {
          finishedBefore: new Date(now.getTime() - this.config.jobsMaxAgeHours * HOUR),
          keep: this.config.jobsMaxRows,
          limit: n,
        }),
      ),
      deliveries: await this.drain((n) =>
        purgeDeliveries(this.pool, {
          finishedBefore: new Date(now.getTime() - this.config.deliveriesMaxAgeHours * HOUR),
          keep: this.config.deliveriesMaxRows,
          limit: n,
        }),
      ),
      contentCache: await this.drain((n) => purgeContentCache(this.pool, this.contentCacheBytes, n)),
      slackReplays: await purgeReplayRecords(this.pool),
    }
    for (const [table, n] of Object.entries(counts)) if (n > 0) this.purged?.inc({ table }, n)
    this.log.info({ purged: counts, batchSize: limit }, 'operational tables purged')
    return counts
  }

  private async drain(batch: (limit: number) => Promise<number>): Promise<number> {
    let total = 0
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const deleted = await batch(this.config.batchSize)
      total += deleted
      if (deleted < this.config.batchSize) break
    }
    return total
  }
}
