import type { FastifyBaseLogger } from 'fastify'
import type pg from 'pg'
import type { RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import type { RefusalLedger } from '../http/refusals.js'
import { MANIFEST_MEDIA_TYPES, USER_AGENT } from '../oci/index.js'
import { isDigest, isRepositoryName, isTag } from '../oci/reference.js'
import type { EventCounts, RegistryEvent } from './schemas.js'
import { type EventSecrets, secretMatches } from './secrets.js'
import {
  type ActivityEvent,
  insertEventIds,
  pruneEventIds,
  upsertDigestActivity,
  upsertTagActivity,
} from './sql.js'

const MANIFEST_TYPES: ReadonlySet<string> = new Set(MANIFEST_MEDIA_TYPES)

/** How long event ids are remembered for deduplication, and how often old ones are dropped. */
export const EVENT_ID_RETENTION_MS = 7 * 24 * 3600_000
const PRUNE_EVERY_MS = 3600_000
/** `regent/`: the product part of the User-Agent Regent's registry client sends. */
const OWN_AGENT = `${USER_AGENT.split('/')[0]}/`

// RFC 3339 as registries write it (distribution: Go's RFC3339Nano, up to 9 fraction digits).
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/

export interface RegistryEventsServiceOptions {
  pool: pg.Pool
  secrets: EventSecrets
  log: FastifyBaseLogger
  /** Where refused envelopes are counted and summarised (never one row or log line each). */
  refusals: Pick<RefusalLedger, 'record'>
}

/** Takes in notification envelopes: checks the sender, then records manifest pushes and pulls. */
export class RegistryEventsService {
  readonly #pool: pg.Pool
  readonly #secrets: EventSecrets
  readonly #log: FastifyBaseLogger
  readonly #refusals: Pick<RefusalLedger, 'record'>
  readonly #prunedAt = new Map<string, number>()

  constructor(options: RegistryEventsServiceOptions) {
    this.#pool = options.pool
    this.#secrets = options.secrets
    this.#log = options.log
    this.#refusals = options.refusals
  }

  /**
   * Throws unless `registry` takes events and `given` is its secret. A refusal is counted, logged
   * at warn once per source and window (a registry with a stale secret otherwise retries
   * unnoticed forever) and summarised in the audit log, never with the secret.
   */
  authenticate(registry: string, given: string | string[] | undefined, context: RequestContext) {
    const secret = this.#secrets.get(registry)
    if (secret === undefined) throw new errors.REGISTRY_UNKNOWN(registry)
    if (secret === null) throw new errors.EVENTS_NOT_ENABLED(registry)
    if (!secretMatches(secret, given)) {
      this.#refusals.record(
        'registry-events',
        context,
        `${registry}: secret ${given === undefined ? 'missing' : 'wrong'}`,
      )
      throw new errors.EVENTS_UNAUTHENTICATED()
    }
  }

  /**
   * Records one envelope in one transaction. Every event is checked before anything is written,
   * so a malformed envelope changes nothing. Only events whose id is new update the activity.
   */
  async ingest(registry: string, events: RegistryEvent[]): Promise<EventCounts> {
    const counts: EventCounts = { accepted: 0, duplicates: 0, ignored: 0 }
    const recorded: { id: string; activity: ActivityEvent }[] = []
    events.forEach((event, index) => {
      const activity = toActivity(event, index)
      if (activity) recorded.push({ id: event.id, activity })
      else counts.ignored++
    })
    if (recorded.length === 0) return counts

    await withTransaction(this.#pool, async (client) => {
      // Sorted, so concurrent envelopes (several registry replicas) lock rows in the same order.
      const ids = [...new Set(recorded.map((r) => r.id))].sort()
      const fresh = await insertEventIds(client, registry, ids)
      const taken: ActivityEvent[] = []
      for (const { id, activity } of recorded) {
        // delete(): a second event with the same id in one envelope is a duplicate too.
        if (fresh.delete(id)) taken.push(activity)
        else counts.duplicates++
      }
      counts.accepted = taken.length
      await upsertDigestActivity(client, registry, taken)
      await upsertTagActivity(client, registry, taken)
    })
    await this.#pruneNowAndThen(registry)
    return counts
  }

  async #pruneNowAndThen(registry: string): Promise<void> {
    const now = Date.now()
    if (now - (this.#prunedAt.get(registry) ?? 0) < PRUNE_EVERY_MS) return
    this.#prunedAt.set(registry, now)
    try {
      const pruned = await pruneEventIds(this.#pool, registry, new Date(now - EVENT_ID_RETENTION_MS))
      if (pruned > 0) this.#log.debug({ registry, pruned }, 'old registry event ids pruned')
    } catch (err) {
      // The envelope is recorded already; pruning is tried again on a later one.
      this.#log.warn({ err, registry }, 'pruning registry event ids failed')
      this.#prunedAt.delete(registry)
    }
  }
}

/**
 * The activity an event records, or null for events that do not count. Throws REGENT_VALIDATION
 * for an event that cannot be understood: a bad timestamp anywhere, or a manifest push or pull
 * without a valid repository and digest.
 */
export function toActivity(event: RegistryEvent, index: number): ActivityEvent | null {
  const where = `events[${index}]`
  const timestamp = parseTimestamp(event.timestamp)
  if (timestamp === null) throw new errors.VALIDATION(`${where}.timestamp is not an RFC 3339 date-time`)
  if (event.action !== 'push' && event.action !== 'pull') return null
  const target = event.target ?? {}
  const isManifest =
    (target.mediaType !== undefined && MANIFEST_TYPES.has(target.mediaType.split(';')[0]?.trim() ?? '')) ||
    (target.url !== undefined && /\/manifests\/[^/]+$/.test(target.url))
  if (!isManifest) return null
  // The registry reports Regent's own HEADs and GETs (listing, planning, re-resolving) as pulls.
  // They are not use, and counting them would make every tag Regent looked at "recently pulled".
  if (event.action === 'pull' && event.request?.useragent?.startsWith(OWN_AGENT)) return null
  if (target.repository === undefined || !isRepositoryName(target.repository)) {
    throw new errors.VALIDATION(`${where}.target.repository is not a repository name`)
  }
  if (target.digest === undefined || !isDigest(target.digest)) {
    throw new errors.VALIDATION(`${where}.target.digest is not a sha256 or sha512 digest`)
  }
  const tag = target.tag === undefined || target.tag === '' ? null : target.tag
  if (tag !== null && !isTag(tag)) throw new errors.VALIDATION(`${where}.target.tag is not a tag`)
  return { repository: target.repository, digest: target.digest, tag, action: event.action, timestamp }
}

/**
 * The timestamp as Postgres reads it (fraction digits kept: Postgres rounds to microseconds), or
 * null when it is not a real RFC 3339 date-time. Out-of-range fields are refused here rather than
 * failing the transaction later with a 500 the registry would retry forever.
 */
export function parseTimestamp(text: string): string | null {
  const m = RFC3339.exec(text)
  if (!m) return null
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second))
  const real =
    year >= 1 &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60
  if (!real) return null
  if (m[8] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return null
  return text.toUpperCase()
}
