import type { Queryable } from '../db/pool.js'
import { SLACK_TIMESTAMP_TOLERANCE_SEC } from './signature.js'
import { purgeSignatures } from './sql.js'

export { slackRoutes } from './routes.js'

/**
 * Forgets accepted Slack signatures that no replay could use any more (their timestamps are past
 * the 5-minute window; twice that, for clock skew between replicas). Returns how many went.
 */
export function purgeReplayRecords(db: Queryable): Promise<number> {
  return purgeSignatures(db, 2 * SLACK_TIMESTAMP_TOLERANCE_SEC)
}
