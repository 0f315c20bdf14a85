import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { isAdmin, type Principal } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { enqueueJob } from '../jobs/index.js'
import type { RegistryConfig } from '../registries/config-schema.js'
import { lastPulls } from '../registry-events/index.js'
import { intervalMs, type UsageConfig, type UsageSourceConfig } from './config-schema.js'
import { RegistryHosts } from './image-reference.js'
import { collectInventory } from './inventory.js'
import { collectKubernetes } from './kubernetes/source.js'
import { ReferenceCollector } from './references.js'
import {
  deleteUnseen,
  listReferences,
  lockSource,
  type ReferenceRow,
  recordFailure,
  recordSuccess,
  type SourceRow,
  selectSources,
  selectUsage,
  startSync,
  upsertReferences,
} from './sql.js'
import {
  buildVerdicts,
  coveringSources,
  describeUsage,
  type SourceCoverage,
  type UsageCandidate,
  type UsageVerdict,
} from './verdict.js'

/** The job kind that syncs one usage source (payload `{ source }`). */
export const USAGE_SYNC = 'usage.sync'

/** Rows per INSERT while a sync writes its references. */
const WRITE_BATCH = 5000

export interface SyncResult {
  source: string
  outcome: 'succeeded' | 'failed' | 'superseded'
  references: number
  removed: number
  counts: Record<string, number>
  durationMs: number
  error?: string
}

export interface SourceView {
  name: string
  kind: string
  registries: string[] | null
  refreshIntervalMs: number
  staleAfterMs: number
  stale: boolean
  lastSyncStartedAt: string | null
  lastSyncFinishedAt: string | null
  lastSyncDurationMs: number | null
  lastOutcome: 'succeeded' | 'failed' | null
  lastSuccessAt: string | null
  lastError: string | null
  lastErrorAt: string | null
  counts: Record<string, number>
}

export interface ReferenceView {
  id: string
  source: string
  registry: string
  repository: string
  digest: string | null
  tag: string | null
  cluster: string
  namespace: string
  kind: string
  name: string
  container: string
  owner: { kind: string; name: string } | null
  running: boolean
  pods: number
  firstSeenAt: string
  lastSeenAt: string
}

export interface UsageQuery {
  registry: string
  repository?: string
  digest?: string
  tag?: string
  source?: string
  limit: number
  cursor?: string
}

export interface UsageServiceOptions {
  /** Where inventory tokens named by `tokenEnv` are read. */
  env: Record<string, string | undefined>
  /** Called after each sync (metrics). */
  observe?: (result: SyncResult) => void
  /** The tags pointing at a digest now (for GET /v1/usage with a digest); default: none. */
  tagsOf?: (registry: string, repository: string, digest: string) => Promise<string[]>
}

/**
 * In-use awareness: syncs what clusters and inventories run into Postgres, and answers, for the
 * deletion planner, retention and people, whether digests are in use and where.
 */
export class UsageService {
  private readonly hosts: RegistryHosts
  private readonly coverage: SourceCoverage[]
  private readonly byName = new Map<string, UsageSourceConfig>()
  private readonly registryNames: Set<string>

  constructor(
    readonly pool: pg.Pool,
    private readonly config: UsageConfig,
    registries: RegistryConfig[],
    private readonly options: UsageServiceOptions,
  ) {
    this.hosts = new RegistryHosts(registries)
    this.registryNames = new Set(registries.map((r) => r.name))
    for (const source of config.sources) this.byName.set(source.name, source)
    this.coverage = config.sources.map((s) => ({
      name: s.name,
      staleAfterMs: intervalMs(s.staleAfterMs),
      ...(s.registries ? { registries: s.registries } : {}),
    }))
  }

  get sources(): readonly UsageSourceConfig[] {
    return this.config.sources
  }

  /** Whether a verdict stops a deletion: in use, or unknown while unknown counts as in use. */
  countsAsInUse(verdict: UsageVerdict): boolean {
    return verdict.status === 'in-use' || (verdict.status === 'unknown' && this.config.unknownCountsAsInUse)
  }

  /** The verdict in one line ("running in prod/payments deploy/api, 3 pods"). */
  describe(verdict: UsageVerdict, now?: Date): string {
    return describeUsage(verdict, now)
  }

  /**
   * Verdicts for candidate digests of one repository, each with the tags pointing at it now. One
   * Postgres round trip whatever the number of candidates. A digest given twice is judged with the
   * union of its tags.
   */
  async usageOf(
    registry: string,
    repository: string,
    candidates: { digest: string; tags: string[] }[],
  ): Promise<Map<string, UsageVerdict>> {
    if (candidates.length === 0) return new Map()
    const merged = new Map<string, Set<string>>()
    for (const c of candidates) {
      const tags = merged.get(c.digest) ?? new Set<string>()
      for (const tag of c.tags) tags.add(tag)
      merged.set(c.digest, tags)
    }
    const list: UsageCandidate[] = [...merged].map(([digest, tags]) => ({ digest, tags: [...tags] }))
    const covering = coveringSources(this.coverage, registry)
    const digests = list.map((c) => c.digest)
    // The registry events feature knows the pulls: asked at the same time, it costs no extra wait.
    const [lookup, pulls] = await Promise.all([
      selectUsage(this.pool, {
        registry,
        repository,
        digests,
        tags: [...new Set(list.flatMap((c) => c.tags))],
        sources: this.coverage.map((s) => s.name),
      }),
      lastPulls(this.pool, registry, repository, digests),
    ])
    return buildVerdicts(list, lookup, pulls, covering)
  }

  /**
   * Syncs one source: collects everything it reports, then replaces the source's references in one
   * transaction. A failure changes no reference and records the error on the source.
   */
  async sync(name: string, signal?: AbortSignal): Promise<SyncResult> {
    const source = this.byName.get(name)
    if (!source) throw new errors.USAGE_SOURCE_NOT_FOUND(name)
    const started = Date.now()
    const startedAt = await startSync(this.pool, source.name, source.kind)
    const covers = source.registries ? new Set(source.registries) : undefined
    const collector = new ReferenceCollector(this.hosts, covers)
    let result: SyncResult
    try {
      const counts: Record<string, number> =
        source.kind === 'kubernetes'
          ? {
              ...(await collectKubernetes(
                {
                  name: source.name,
                  kubernetes: source.kubernetes ?? { namespaces: [], pageSize: 500, timeoutMs: 30000 },
                },
                this.config.inCluster,
                collector,
                signal,
              )),
            }
          : {
              ...(await collectInventory(
                {
                  name: source.name,
                  inventory: source.inventory as NonNullable<UsageSourceConfig['inventory']>,
                },
                this.options.env,
                collector,
                signal,
              )),
            }
      counts.references = collector.references.length
      counts.unmatched = collector.unmatched
      counts.unparsable = collector.unparsable
      const written = await withTransaction(this.pool, async (client) => {
        const lastSuccess = await lockSource(client, source.name)
        // A slower sync that started earlier must not overwrite a newer one's picture.
        if (lastSuccess && lastSuccess.getTime() > startedAt.getTime()) return undefined
        for (let i = 0; i < collector.references.length; i += WRITE_BATCH)
          await upsertReferences(client, source.name, collector.references.slice(i, i + WRITE_BATCH))
        const removed = await deleteUnseen(client, source.name)
        await recordSuccess(client, source.name, startedAt, counts)
        return removed
      })
      result = {
        source: source.name,
        outcome: written === undefined ? 'superseded' : 'succeeded',
        references: collector.references.length,
        removed: written ?? 0,
        counts,
        durationMs: Date.now() - started,
      }
    } catch (err) {
      const message = (err as Error).message
      await recordFailure(this.pool, source.name, startedAt, message)
      result = {
        source: source.name,
        outcome: 'failed',
        references: 0,
        removed: 0,
        counts: {},
        durationMs: Date.now() - started,
        error: message,
      }
    }
    this.options.observe?.(result)
    return result
  }

  /** Enqueues a sync job; `slot` makes it once per slot across replicas, else it is a manual one. */
  async enqueueSync(
    db: Pick<pg.Pool, 'query'>,
    name: string,
    slot?: number,
  ): Promise<{ jobId: string; created: boolean }> {
    if (!this.byName.has(name)) throw new errors.USAGE_SOURCE_NOT_FOUND(name)
    const { job, created } = await enqueueJob(db, {
      kind: USAGE_SYNC,
      payload: { source: name },
      uniqueKey: `usage-sync:${name}:${slot ?? `manual:${randomUUID()}`}`,
      // The next slot is the retry: a failed sync is recorded on the source, not repeated at once.
      maxAttempts: 1,
    })
    return { jobId: job.id, created }
  }

  /** An admin asks for a sync now. */
  async requestSync(principal: Principal, name: string): Promise<{ jobId: string }> {
    if (!isAdmin(principal)) throw new errors.FORBIDDEN('only an admin may start a usage sync')
    const { jobId } = await this.enqueueSync(this.pool, name)
    return { jobId }
  }

  async listSources(principal: Principal): Promise<SourceView[]> {
    requireViewer(principal)
    return this.sourceViews()
  }

  /** Every configured source with its last sync, whoever asks (metrics read it too). */
  async sourceViews(): Promise<SourceView[]> {
    const rows = new Map((await selectSources(this.pool, [...this.byName.keys()])).map((r) => [r.name, r]))
    return this.config.sources.map((source) => toSourceView(source, rows.get(source.name)))
  }

  async list(
    principal: Principal,
    query: UsageQuery,
  ): Promise<{
    items: ReferenceView[]
    nextCursor: string | null
    verdict: (UsageVerdict & { summary: string; tags: string[] }) | null
  }> {
    requireViewer(principal)
    if (!this.registryNames.has(query.registry)) throw new errors.REGISTRY_UNKNOWN(query.registry)
    const after = query.cursor ? decodeCursor(query.cursor) : undefined
    const rows = await listReferences(this.pool, {
      registry: query.registry,
      ...(query.repository ? { repository: query.repository } : {}),
      ...(query.digest ? { digest: query.digest } : {}),
      ...(query.tag ? { tag: query.tag } : {}),
      ...(query.source ? { source: query.source } : {}),
      sources: [...this.byName.keys()],
      ...(after ? { after } : {}),
      limit: query.limit + 1,
    })
    const page = rows.slice(0, query.limit)
    const last = page[page.length - 1]
    return {
      items: page.map(toReferenceView),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.id) : null,
      verdict:
        query.repository && query.digest
          ? await this.verdictOf(query.registry, query.repository, query.digest)
          : null,
    }
  }

  /** One digest's verdict with the tags pointing at it now, and its one-line summary. */
  private async verdictOf(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<UsageVerdict & { summary: string; tags: string[] }> {
    const tags = (await this.options.tagsOf?.(registry, repository, digest)) ?? []
    const verdict = (await this.usageOf(registry, repository, [{ digest, tags }])).get(digest) as UsageVerdict
    return { ...verdict, tags, summary: this.describe(verdict) }
  }
}

function requireViewer(principal: Principal): void {
  if (principal.roles.length === 0) throw new errors.FORBIDDEN('usage needs at least the viewer role')
}

function encodeCursor(id: string): string {
  return Buffer.from(`u:${id}`).toString('base64url')
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const match = /^u:(\d{1,19})$/.exec(text)
  if (!match) throw new errors.INVALID_CURSOR()
  return match[1] as string
}

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null
}

function toSourceView(source: UsageSourceConfig, row: SourceRow | undefined): SourceView {
  const staleAfterMs = intervalMs(source.staleAfterMs)
  return {
    name: source.name,
    kind: source.kind,
    registries: source.registries ?? null,
    refreshIntervalMs: intervalMs(source.refreshIntervalMs),
    staleAfterMs,
    stale: row?.age_ms === null || row?.age_ms === undefined || row.age_ms > staleAfterMs,
    lastSyncStartedAt: iso(row?.last_started_at ?? null),
    lastSyncFinishedAt: iso(row?.last_finished_at ?? null),
    lastSyncDurationMs: row?.last_duration_ms ?? null,
    lastOutcome: row?.last_outcome ?? null,
    lastSuccessAt: iso(row?.last_success_at ?? null),
    lastError: row?.last_error ?? null,
    lastErrorAt: iso(row?.last_error_at ?? null),
    counts: row?.counts ?? {},
  }
}

function toReferenceView(row: ReferenceRow): ReferenceView {
  return {
    id: row.id,
    source: row.source,
    registry: row.registry,
    repository: row.repository,
    digest: row.digest,
    tag: row.tag,
    cluster: row.cluster,
    namespace: row.namespace,
    kind: row.kind,
    name: row.name,
    container: row.container,
    owner: row.owner_kind && row.owner_name ? { kind: row.owner_kind, name: row.owner_name } : null,
    running: row.running,
    pods: row.pods,
    firstSeenAt: row.first_seen_at.toISOString(),
    lastSeenAt: row.last_seen_at.toISOString(),
  }
}
