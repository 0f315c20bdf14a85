import type pg from 'pg'

/**
 * Manifests and image configs are immutable by digest: fetched once, they are served from memory
 * (bounded by bytes, least recently used out first) and from Postgres after a restart. Tag → digest
 * answers are NOT cached here: they change, and live in `TagDigestCache` with a short TTL.
 */
export type ContentKind = 'manifest' | 'config'

export interface CachedContent {
  mediaType: string
  bytes: Buffer
}

interface Key {
  registry: string
  repository: string
  digest: string
}

export class ContentCache {
  private readonly memory = new Map<string, CachedContent>()
  private bytesInMemory = 0
  hits = { memory: 0, database: 0 }
  misses = 0

  constructor(
    private readonly db: Pick<pg.Pool, 'query'>,
    private readonly maxMemoryBytes: number,
  ) {}

  /** The cached content, or what `fetch` returns (then stored in memory and in Postgres). */
  async get(key: Key, kind: ContentKind, fetch: () => Promise<CachedContent>): Promise<CachedContent> {
    const id = `${key.registry}\u0000${key.repository}\u0000${key.digest}`
    const inMemory = this.memory.get(id)
    if (inMemory) {
      // Re-insert to mark it most recently used (Map keeps insertion order).
      this.memory.delete(id)
      this.memory.set(id, inMemory)
      this.hits.memory++
      return inMemory
    }
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
    this.remember(id, content)
    await this.db.query(
      `INSERT INTO content_cache (registry, repository, digest, kind, media_type, bytes)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [key.registry, key.repository, key.digest, kind, content.mediaType, content.bytes],
    )
    return content
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
}

export interface TagHead {
  digest: string
  mediaType: string
  size: number
}
