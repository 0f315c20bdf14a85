import type pg from 'pg'
import { SingleFlight } from '../lib/single-flight.js'

/**
 * Manifests and image configs are immutable by digest: fetched once, they are served from memory
 * (bounded by bytes, least recently used out first) and from Postgres after a restart. Tag → digest
 * answers are NOT cached here: they change, and live in `TagDigestCache` with a short TTL.
 */
export type ContentKind = 'manifest' | 'config'

export interface CachedContent {
  mediaType: string
  bytes: Buffer
  /** The bytes parsed, kept with them by whoever parsed them first (they never change). */
  parsed?: unknown
}

export interface ContentKey {
  registry: string
  repository: string
  digest: string
}

interface PendingRow {
  key: ContentKey
  kind: ContentKind
  content: CachedContent
}

/** Rows written to Postgres per statement; a plan of a large repository fetches thousands. */
const PERSIST_BATCH = 500
/** New content waits at most this long before it is written; a cache loses nothing that matters. */
const PERSIST_DELAY_MS = 50

export class ContentCache {
  private readonly memory = new Map<string, CachedContent>()
  private bytesInMemory = 0
  private readonly fetches = new SingleFlight<CachedContent>()
  private pending: PendingRow[] = []
  private persisting: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  hits = { memory: 0, database: 0 }
  misses = 0

  constructor(
    private readonly db: Pick<pg.Pool, 'query'>,
    private readonly maxMemoryBytes: number,
  ) {}

  /**
   * The cached content, or what `fetch` returns (then kept in memory and written to Postgres).
   * Concurrent callers asking for the same digest share one look-up and one fetch.
   */
  async get(key: ContentKey, kind: ContentKind, fetch: () => Promise<CachedContent>): Promise<CachedContent> {
    const id = idOf(key)
    const inMemory = this.touch(id)
    if (inMemory) {
      this.hits.memory++
      return inMemory
    }
    return this.fetches.run(id, async () => {
      const stored = await this.db.query<{ media_type: string; bytes: Buffer }>(
        'SELECT media_type, bytes FROM content_cache WHERE registry = $1 AND repository = $2 AND digest = $3',
        [key.registry, key.repository, key.digest],
      )
      if (stored.rows[0]) {
        this.hits.database++
        const content = { mediaType: stored.rows[0].media_type, bytes: stored.rows[0].bytes }
        this.remember(id, content)
        return content
      }
      this.misses++
      const content = await fetch()
      this.put(key, kind, content)
      return content
    })
  }

  /**
   * Many digests of one repository at once: memory first, then one query for the rest. What
   * neither holds is left out (the caller fetches it).
   */
  async getMany(
    registry: string,
    repository: string,
    digests: string[],
  ): Promise<Map<string, CachedContent>> {
    const found = new Map<string, CachedContent>()
    const missing: string[] = []
    for (const digest of digests) {
      const hit = this.touch(idOf({ registry, repository, digest }))
      if (hit) {
        this.hits.memory++
        found.set(digest, hit)
      } else missing.push(digest)
    }
    if (missing.length === 0) return found
    const { rows } = await this.db.query<{ digest: string; media_type: string; bytes: Buffer }>(
      `SELECT digest, media_type, bytes FROM content_cache
       WHERE registry = $1 AND repository = $2 AND digest = ANY($3::text[])`,
      [registry, repository, missing],
    )
    for (const row of rows) {
      const content = { mediaType: row.media_type, bytes: row.bytes }
      this.hits.database++
      this.remember(idOf({ registry, repository, digest: row.digest }), content)
      found.set(row.digest, content)
    }
    return found
  }

  /** Only what memory holds now: no query, no fetch. */
  peek(key: ContentKey): CachedContent | undefined {
    return this.touch(idOf(key))
  }

  /**
   * Content that arrived some other way (a manifest GET by tag returns the bytes with the digest):
   * kept in memory at once and written to Postgres in batches shortly after.
   */
  put(key: ContentKey, kind: ContentKind, content: CachedContent): void {
    const id = idOf(key)
    if (this.memory.has(id)) return
    this.remember(id, content)
    this.pending.push({ key, kind, content })
    if (this.pending.length >= PERSIST_BATCH) this.flush().catch(() => {})
    else this.timer ??= setTimeout(() => this.flush().catch(() => {}), PERSIST_DELAY_MS)
  }

  /** Writes what `put` has queued; resolves when every write started so far is done. */
  async flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    const rows = this.pending
    this.pending = []
    for (let i = 0; i < rows.length; i += PERSIST_BATCH) {
      const batch = rows.slice(i, i + PERSIST_BATCH)
      this.persisting = this.persisting.then(() => this.insert(batch)).catch(() => {})
    }
    await this.persisting
  }

  private async insert(rows: PendingRow[]): Promise<void> {
    await this.db.query(
      `INSERT INTO content_cache (registry, repository, digest, kind, media_type, bytes)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
       ON CONFLICT DO NOTHING`,
      [
        rows.map((r) => r.key.registry),
        rows.map((r) => r.key.repository),
        rows.map((r) => r.key.digest),
        rows.map((r) => r.kind),
        rows.map((r) => r.content.mediaType),
        rows.map((r) => r.content.bytes),
      ],
    )
  }

  private touch(id: string): CachedContent | undefined {
    const found = this.memory.get(id)
    if (!found) return undefined
    // Re-insert to mark it most recently used (Map keeps insertion order).
    this.memory.delete(id)
    this.memory.set(id, found)
    return found
  }

  private remember(id: string, content: CachedContent): void {
    if (content.bytes.length > this.maxMemoryBytes) return
    this.memory.set(id, content)
    this.bytesInMemory += content.bytes.length
    for (const [oldest, value] of this.memory) {
      if (this.bytesInMemory <= this.maxMemoryBytes) break
      this.memory.delete(oldest)
      this.bytesInMemory -= value.bytes.length
    }
  }
}

function idOf(key: ContentKey): string {
  return `${key.registry}\u0000${key.repository}\u0000${key.digest}`
}

/** Tag → digest answers, fresh for a few seconds only: a tag can be re-pushed at any moment. */
export class TagDigestCache {
  private readonly entries = new Map<string, { value: TagHead; expires: number }>()

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(registry: string, repository: string, tag: string): TagHead | undefined {
    const id = `${registry}\u0000${repository}\u0000${tag}`
    const entry = this.entries.get(id)
    if (!entry) return undefined
    if (entry.expires <= this.now()) {
      this.entries.delete(id)
      return undefined
    }
    return entry.value
  }

  set(registry: string, repository: string, tag: string, value: TagHead): void {
    if (this.ttlMs <= 0) return
    this.entries.set(`${registry}\u0000${repository}\u0000${tag}`, {
      value,
      expires: this.now() + this.ttlMs,
    })
    // Expired entries are dropped lazily; sweep when the map grows so it cannot grow without bound.
    if (this.entries.size > 100_000) {
      const now = this.now()
      for (const [id, entry] of this.entries) if (entry.expires <= now) this.entries.delete(id)
    }
  }

  get ttl(): number {
    return this.ttlMs
  }
}

export interface TagHead {
  digest: string
  mediaType: string
  size: number
}
