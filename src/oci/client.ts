import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { rootCertificates } from 'node:tls'
import { Agent, type Dispatcher, Pool, request } from 'undici'
import type { RegistryConfig } from '../registries/config-schema.js'
import {
  Authenticator,
  type AuthKind,
  type Credentials,
  discard,
  readAtMost,
  Secret,
  scopes,
} from './auth.js'
import {
  type Classification,
  classifyNetworkError,
  classifyResponse,
  errorFor,
  isRegistryError,
  isRetriable,
  type Outcome,
  ociErrors,
  type RegistryError,
  withDetails,
} from './errors.js'
import {
  baseMediaType,
  type Descriptor,
  type ImageConfig,
  isLegacyMediaType,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  type Manifest,
  type ManifestKind,
  MediaTypes,
  manifestKindOf,
  parseImageConfig,
  parseManifest,
} from './media-types.js'
import {
  assertDigest,
  assertRepository,
  assertTag,
  digestAlgorithm,
  isDigest,
  parseReference,
} from './reference.js'

/** A pino-like logger; the client logs objects first, never headers, tokens or credentials. */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface RegistryClientOptions {
  /** Where `passwordEnv`/`tokenEnv` are looked up; tests pass their own. */
  env?: Record<string, string | undefined>
  logger?: Logger
  /** First backoff step; doubled per attempt, with jitter. */
  retryBaseMs?: number
  retryMaxDelayMs?: number
  /**
   * A `Retry-After` longer than this is not slept through: the call fails at once with
   * `REGENT_REGISTRY_RATE_LIMITED` carrying `retryAfterSeconds`, so a job can be rescheduled
   * instead of holding a worker.
   */
  maxRetryAfterSeconds?: number
  now?: () => number
}

export interface PingResult {
  status: number
  authKind: AuthKind
  /** `Docker-Distribution-Api-Version`, e.g. `registry/2.0`. */
  apiVersion?: string
}

export interface ManifestHead {
  digest: string
  mediaType: string
  /** Content-Length of the manifest; -1 when the registry did not send it. */
  size: number
  kind: ManifestKind | undefined
}

export interface FetchedManifest {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  manifest: Manifest
}

export interface BlobHead {
  digest: string
  size: number
}

/** What a delete did. Other outcomes (denied, rate limited, network, …) are thrown. */
export interface MutationResult {
  outcome: Extract<Outcome, 'ok' | 'not_found' | 'delete_disabled'>
  status: number
  ociCode?: string
}

export interface PushResult {
  digest: string
  size: number
}

export interface Referrers {
  /** `api`: `GET /v2/<name>/referrers/<digest>`; `tag-schema`: the `sha256-<hex>` fallback tag. */
  via: 'api' | 'tag-schema'
  referrers: Descriptor[]
  /** The fallback tag read (or that would hold them) when `via` is `tag-schema`. */
  tag?: string
}

export interface Capabilities {
  probedAt: Date
  reachable: boolean
  authKind: AuthKind | undefined
  /** The configured credentials were accepted at `/v2/` (undefined for anonymous registries). */
  authenticated: boolean | undefined
  apiVersion: string | undefined
  catalog: boolean | undefined
  /** undefined when it could not be told (no repository to probe in, or no delete permission). */
  deleteEnabled: boolean | undefined
  tagDelete: boolean | undefined
  referrersApi: boolean | undefined
  /** Repository the delete and referrers probes ran in. */
  probeRepository: string | undefined
  notes: string[]
}

type Method = 'GET' | 'HEAD' | 'DELETE' | 'PUT' | 'POST'
type Headers = Record<string, string | string[] | undefined>

interface Call {
  method: Method
  /** Path and query below the registry URL, starting with `/v2/`. */
  path: string
  /** Token scope; undefined for the anonymous `/v2/` ping. */
  scope: string | undefined
  headers?: Record<string, string>
  body?: Buffer
  /** Read a 2xx body up to this many bytes; without it the body is dumped. */
  maxBytes?: number
  /** Blob GETs may be redirected to storage (S3, GCS); follow one hop, without credentials. */
  followRedirect?: boolean
  /** false: one attempt even for GET (the ping made inside a call that is itself retried). */
  retry?: boolean
}

interface Reply {
  status: number
  headers: Headers
  body: Buffer
  classification: Classification
}

const EMPTY = Buffer.alloc(0)
const ERROR_BODY_BYTES = 64 * 1024
const MAX_LIST_BYTES = 32 * 1024 * 1024
const DEFAULT_BLOB_BYTES = 16 * 1024 * 1024
const REDIRECTS = new Set([301, 302, 303, 307, 308])
const NO_LOG: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/**
 * Sent on every registry call. Registries report Regent's own manifest HEADs and GETs as pulls in
 * their notifications; this lets the events ingestion tell them from real pulls (src/registry-events).
 */
export const USER_AGENT = 'regent/0.1.0'

/**
 * The registry protocol client (OCI distribution / Docker Registry HTTP API v2) for one configured
 * registry: one undici Pool to its origin, bounded by `maxConcurrency`, with connect, headers and
 * body timeouts; a separate Agent for token realms and storage redirects.
 */
export class RegistryClient {
  readonly name: string
  readonly url: URL
  readonly #config: RegistryConfig
  readonly #basePath: string
  readonly #pool: Pool
  readonly #outside: Agent
  readonly #auth: Authenticator
  readonly #log: Logger
  readonly #retryBaseMs: number
  readonly #retryMaxDelayMs: number
  readonly #maxRetryAfterSeconds: number
  #authKnown: Promise<PingResult> | undefined
  #capabilities: Capabilities | undefined
  #probing: Promise<Capabilities> | undefined

  constructor(config: RegistryConfig, options: RegistryClientOptions = {}) {
    this.name = config.name
    this.url = new URL(config.url)
    this.#config = config
    this.#basePath = this.url.pathname.replace(/\/+$/, '')
    this.#log = options.logger ?? NO_LOG
    this.#retryBaseMs = options.retryBaseMs ?? 250
    this.#retryMaxDelayMs = options.retryMaxDelayMs ?? 10_000
    this.#maxRetryAfterSeconds = options.maxRetryAfterSeconds ?? 60
    const credentials = resolveCredentials(config, options.env ?? process.env)
    const connect = connectOptions(config)
    const timeouts = { headersTimeout: config.timeouts.headersMs, bodyTimeout: config.timeouts.bodyMs }
    this.#pool = new Pool(this.url.origin, { connections: config.maxConcurrency, connect, ...timeouts })
    this.#outside = new Agent({ connections: config.maxConcurrency, connect, ...timeouts })
    this.#auth = new Authenticator({
      registry: config.name,
      registryUrl: this.url,
      tokenRealms: config.tokenRealms,
      credentials,
      tokenDispatcher: this.#outside,
      ...(options.now ? { now: options.now } : {}),
    })
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool.close(), this.#outside.close()])
  }

  // ------------------------------------------------------------------------------------------
  // Ping and listing
  // ------------------------------------------------------------------------------------------

  /** Anonymous `GET /v2/`: reachability and the auth scheme the registry asks for. */
  async ping(): Promise<PingResult> {
    return this.#ping(true)
  }

  async #ping(retry: boolean): Promise<PingResult> {
    const reply = await this.#exchange({ method: 'GET', path: this.#path('/v2/'), scope: undefined, retry })
    if (reply.status !== 200 && reply.status !== 401) throw this.#fail(reply.classification, 'GET /v2/')
    this.#auth.learn(reply.status, reply.headers['www-authenticate'])
    const apiVersion = header(reply.headers, 'docker-distribution-api-version')
    const result: PingResult = { status: reply.status, authKind: this.#auth.kind ?? 'none' }
    if (apiVersion !== undefined) result.apiVersion = apiVersion
    return result
  }

  /**
   * Repository names, page by page (`n`, then the `Link: <…>; rel="next"` the registry returns),
   * holding one page at a time. `_catalog` is a distribution extension, not OCI.
   */
  async *catalog(opts: { pageSize?: number; last?: string } = {}): AsyncGenerator<string, void, undefined> {
    const params = new URLSearchParams({ n: String(pageSize(opts.pageSize)) })
    if (opts.last !== undefined) params.set('last', assertRepository(opts.last))
    yield* this.#pages(`/v2/_catalog?${params}`, scopes.catalog, 'repositories')
  }

  /** Tags of a repository, page by page. distribution 2.8 ignores `n` here and sends one page. */
  async *tags(repository: string, opts: { pageSize?: number } = {}): AsyncGenerator<string, void, undefined> {
    assertRepository(repository)
    const params = new URLSearchParams({ n: String(pageSize(opts.pageSize)) })
    yield* this.#pages(`/v2/${repository}/tags/list?${params}`, scopes.pull(repository), 'tags')
  }

  async *#pages(
    first: string,
    scope: string,
    field: 'repositories' | 'tags',
  ): AsyncGenerator<string, void, undefined> {
    let path: string | undefined = this.#path(first)
    while (path !== undefined) {
      const reply = await this.#expectOk({
        method: 'GET',
        path,
        scope,
        headers: { accept: 'application/json' },
        maxBytes: MAX_LIST_BYTES,
      })
      const names = listField(reply.body, field, this.name)
      path = this.#nextPage(reply.headers, path)
      yield* names
    }
  }

  /** Follows RFC 5988 `Link: <url>; rel="next"`, only within the registry's own origin and API. */
  #nextPage(headers: Headers, current: string): string | undefined {
    const target = nextLink(headers.link)
    if (target === undefined) return undefined
    const url = new URL(target, new URL(current, this.url.origin))
    if (url.origin !== this.url.origin || !url.pathname.startsWith(`${this.#basePath}/v2/`)) {
      throw new ociErrors.REGISTRY_ERROR(this.name, `GET ${current}`, 'pagination link leaves the registry')
    }
    const next = `${url.pathname}${url.search}`
    // A registry repeating the same page link would loop forever.
    return next === current ? undefined : next
  }

  // ------------------------------------------------------------------------------------------
  // Manifests
  // ------------------------------------------------------------------------------------------

  /** HEAD with the full Accept list; undefined when the registry answers 404. */
  async headManifest(repository: string, reference: string): Promise<ManifestHead | undefined> {
    assertRepository(repository)
    const ref = parseReference(reference)
    const path = this.#path(`/v2/${repository}/manifests/${reference}`)
    const reply = await this.#exchange({
      method: 'HEAD',
      path,
      scope: scopes.pull(repository),
      headers: { accept: MANIFEST_ACCEPT },
    })
    if (reply.classification.outcome === 'not_found') return undefined
    this.#ensureOk(reply, `HEAD ${path}`)
    const returned = header(reply.headers, 'docker-content-digest')
    // Asked by digest, the registry must confirm that digest (when it answers in the same algorithm).
    if (
      ref.kind === 'digest' &&
      returned !== undefined &&
      sameAlgorithm(returned, ref.digest) &&
      returned !== ref.digest
    ) {
      throw this.#mismatch(path, ref.digest, returned)
    }
    const digest = ref.kind === 'digest' ? ref.digest : returned
    if (digest === undefined || !isDigest(digest)) {
      // Without Docker-Content-Digest the digest can only come from the bytes.
      const got = await this.getManifest(repository, reference)
      return { digest: got.digest, mediaType: got.mediaType, size: got.size, kind: got.manifest.kind }
    }
    const mediaType = baseMediaType(header(reply.headers, 'content-type')) ?? 'application/octet-stream'
    const size = Number(header(reply.headers, 'content-length') ?? Number.NaN)
    return {
      digest,
      mediaType,
      size: Number.isSafeInteger(size) ? size : -1,
      kind: manifestKindOf(mediaType),
    }
  }

  /**
   * GET with the full Accept list. The body's hash must equal the digest asked for, or, for a
   * tag, the `Docker-Content-Digest` the registry returned: anything else is a corrupted or
   * tampered answer and fails with `REGENT_DIGEST_MISMATCH`.
   */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    assertRepository(repository)
    const ref = parseReference(reference)
    const path = this.#path(`/v2/${repository}/manifests/${reference}`)
    const reply = await this.#expectOk({
      method: 'GET',
      path,
      scope: scopes.pull(repository),
      headers: { accept: MANIFEST_ACCEPT },
      maxBytes: MAX_MANIFEST_BYTES,
    })
    const returned = header(reply.headers, 'docker-content-digest')
    const expected =
      ref.kind === 'digest' ? ref.digest : returned !== undefined && isDigest(returned) ? returned : undefined
    const digest = digestOf(reply.body, expected === undefined ? 'sha256' : digestAlgorithm(expected))
    if (expected !== undefined && digest !== expected) throw this.#mismatch(path, expected, digest)
    const manifest = parseManifest(reply.body, header(reply.headers, 'content-type'))
    return { digest, mediaType: manifest.mediaType, size: reply.body.length, bytes: reply.body, manifest }
  }

  /**
   * PUT a manifest (restore, untag placeholder). Never retried. Legacy schema 1 types are refused;
   * the body must parse, and the registry's `Docker-Content-Digest` must equal our hash.
   */
  async putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    bytes: Buffer,
  ): Promise<PushResult> {
    assertRepository(repository)
    const ref = parseReference(reference)
    if (isLegacyMediaType(mediaType)) {
      throw new ociErrors.LEGACY_MANIFEST(`${repository}:${reference}`, mediaType)
    }
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new ociErrors.RESPONSE_TOO_LARGE(`PUT manifest ${repository}:${reference}`, MAX_MANIFEST_BYTES)
    }
    parseManifest(bytes, mediaType)
    const digest = digestOf(bytes, ref.kind === 'digest' ? digestAlgorithm(ref.digest) : 'sha256')
    const path = this.#path(`/v2/${repository}/manifests/${reference}`)
    if (ref.kind === 'digest' && ref.digest !== digest) throw this.#mismatch(path, ref.digest, digest)
    const reply = await this.#expectOk({
      method: 'PUT',
      path,
      scope: scopes.push(repository),
      headers: { 'content-type': mediaType },
      body: bytes,
    })
    this.#checkReturnedDigest(reply, path, digest)
    return { digest, size: bytes.length }
  }

  /**
   * DELETE by digest: removes the manifest and every tag pointing at it (distribution
   * `DeleteManifest` untags them all). Returns ok / not_found / delete_disabled and leaves the
   * meaning of a 404 to the caller (R5: "already deleted" only after its own earlier attempt).
   * Never retried: a retried DELETE whose first answer was lost comes back 404.
   */
  async deleteManifest(
    repository: string,
    digest: string,
    opts: { mediaType?: string } = {},
  ): Promise<MutationResult> {
    assertRepository(repository)
    assertDigest(digest)
    const known = await this.#refuseLegacy(repository, digest, opts.mediaType)
    if (!known) return { outcome: 'not_found', status: 404 }
    return this.#delete(repository, `/v2/${repository}/manifests/${digest}`)
  }

  /**
   * OCI 1.1 tag delete (`DELETE /v2/<name>/manifests/<tag>`). distribution 2.8 does not support it
   * and answers 400 `DIGEST_INVALID`, which comes back as `delete_disabled`: callers decide (the
   * probe's `tagDelete` says whether the placeholder fallback is needed).
   */
  async deleteTag(
    repository: string,
    tag: string,
    opts: { mediaType?: string } = {},
  ): Promise<MutationResult> {
    assertRepository(repository)
    assertTag(tag)
    const known = await this.#refuseLegacy(repository, tag, opts.mediaType)
    if (!known) return { outcome: 'not_found', status: 404 }
    return this.#delete(repository, `/v2/${repository}/manifests/${tag}`)
  }

  /** False when the manifest does not exist; throws for schema 1 ones. */
  async #refuseLegacy(
    repository: string,
    reference: string,
    mediaType: string | undefined,
  ): Promise<boolean> {
    const type = mediaType ?? (await this.headManifest(repository, reference))?.mediaType
    if (type === undefined) return false
    if (isLegacyMediaType(type)) throw new ociErrors.LEGACY_MANIFEST(`${repository}@${reference}`, type)
    return true
  }

  async #delete(repository: string, path: string): Promise<MutationResult> {
    const full = this.#path(path)
    const reply = await this.#exchange({ method: 'DELETE', path: full, scope: scopes.delete(repository) })
    return this.#mutationResult(reply, `DELETE ${full}`)
  }

  #mutationResult(reply: Reply, what: string): MutationResult {
    const c = reply.classification
    if (c.outcome !== 'ok' && c.outcome !== 'not_found' && c.outcome !== 'delete_disabled') {
      throw this.#fail(c, what)
    }
    const result: MutationResult = { outcome: c.outcome, status: reply.status }
    if (c.ociCode !== undefined) result.ociCode = c.ociCode
    this.#log.info({ registry: this.name, request: what, ...result }, 'registry delete answered')
    return result
  }

  // ------------------------------------------------------------------------------------------
  // Blobs
  // ------------------------------------------------------------------------------------------

  /** undefined when the registry answers 404. */
  async headBlob(repository: string, digest: string): Promise<BlobHead | undefined> {
    assertRepository(repository)
    assertDigest(digest)
    const path = this.#path(`/v2/${repository}/blobs/${digest}`)
    const reply = await this.#exchange({
      method: 'HEAD',
      path,
      scope: scopes.pull(repository),
      followRedirect: true,
    })
    if (reply.classification.outcome === 'not_found') return undefined
    this.#ensureOk(reply, `HEAD ${path}`)
    const size = Number(header(reply.headers, 'content-length') ?? Number.NaN)
    return { digest, size: Number.isSafeInteger(size) ? size : -1 }
  }

  /** GET a small blob (an image config), capped at `maxBytes`, its digest verified. */
  async getBlob(repository: string, digest: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    assertRepository(repository)
    assertDigest(digest)
    const path = this.#path(`/v2/${repository}/blobs/${digest}`)
    const reply = await this.#expectOk({
      method: 'GET',
      path,
      scope: scopes.pull(repository),
      maxBytes: opts.maxBytes ?? DEFAULT_BLOB_BYTES,
      followRedirect: true,
    })
    const actual = digestOf(reply.body, digestAlgorithm(digest))
    if (actual !== digest) throw this.#mismatch(path, digest, actual)
    return reply.body
  }

  async getImageConfig(
    repository: string,
    digest: string,
    opts: { maxBytes?: number } = {},
  ): Promise<ImageConfig> {
    return parseImageConfig(await this.getBlob(repository, digest, opts))
  }

  /**
   * Monolithic upload: `POST /v2/<name>/blobs/uploads/` then `PUT <location>&digest=…` with the
   * whole body (distribution 2.8 has no single-POST upload). Skipped when the blob exists.
   */
  async pushBlob(repository: string, bytes: Buffer): Promise<PushResult & { existed: boolean }> {
    assertRepository(repository)
    const digest = digestOf(bytes, 'sha256')
    if (await this.headBlob(repository, digest)) return { digest, size: bytes.length, existed: true }
    const start = this.#path(`/v2/${repository}/blobs/uploads/`)
    const started = await this.#expectOk({ method: 'POST', path: start, scope: scopes.push(repository) })
    const put = this.#uploadLocation(started.headers, start)
    put.searchParams.set('digest', digest)
    const path = `${put.pathname}${put.search}`
    const reply = await this.#expectOk({
      method: 'PUT',
      path,
      scope: scopes.push(repository),
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    })
    this.#checkReturnedDigest(reply, put.pathname, digest)
    return { digest, size: bytes.length, existed: false }
  }

  /** The upload URL; credentials go with the PUT, so it must stay on the registry's origin. */
  #uploadLocation(headers: Headers, start: string): URL {
    const location = header(headers, 'location')
    if (location === undefined) {
      throw new ociErrors.REGISTRY_ERROR(this.name, `POST ${start}`, 'no Location header')
    }
    const url = new URL(location, this.url.origin)
    if (url.origin !== this.url.origin) {
      throw new ociErrors.REGISTRY_ERROR(this.name, `POST ${start}`, 'upload location on another origin')
    }
    return url
  }

  // ------------------------------------------------------------------------------------------
  // Referrers
  // ------------------------------------------------------------------------------------------

  /**
   * Manifests whose `subject` is `digest`: the referrers API, or, where it is absent (404 without
   * an OCI index body: distribution 2.8 answers a plain-text "404 page not found"), the
   * `<alg>-<hex>` tag schema of OCI distribution-spec 1.1 §Referrers tag schema.
   */
  async referrers(
    repository: string,
    digest: string,
    opts: { artifactType?: string } = {},
  ): Promise<Referrers> {
    assertRepository(repository)
    assertDigest(digest)
    const query =
      opts.artifactType === undefined ? '' : `?${new URLSearchParams({ artifactType: opts.artifactType })}`
    const path = this.#path(`/v2/${repository}/referrers/${digest}${query}`)
    const reply = await this.#exchange({
      method: 'GET',
      path,
      scope: scopes.pull(repository),
      headers: { accept: MediaTypes.OciIndex },
      maxBytes: MAX_MANIFEST_BYTES,
    })
    const answered = reply.status === 200 || (reply.status === 404 && isIndexBody(reply))
    if (answered)
      return { via: 'api', referrers: filterByType(indexChildren(reply.body, this.name), opts.artifactType) }
    if (reply.status !== 404) throw this.#fail(reply.classification, `GET ${path}`)
    return this.#referrersFromTag(repository, digest, opts.artifactType)
  }

  async #referrersFromTag(repository: string, digest: string, artifactType?: string): Promise<Referrers> {
    const tag = referrersTag(digest)
    const head = await this.headManifest(repository, tag)
    if (head === undefined) return { via: 'tag-schema', referrers: [], tag }
    const { manifest } = await this.getManifest(repository, head.digest)
    const children = manifest.kind === 'index' ? manifest.manifests : []
    return { via: 'tag-schema', referrers: filterByType(children, artifactType), tag }
  }

  // ------------------------------------------------------------------------------------------
  // Capability probe
  // ------------------------------------------------------------------------------------------

  /**
   * What this registry can do, probed without changing anything: deletes and tag deletes are
   * probed with a random digest and a random tag that cannot exist, so a registry that deletes
   * whatever a tag points to still deletes nothing. Cached; `refresh` probes again.
   */
  async probe(opts: { refresh?: boolean; repository?: string } = {}): Promise<Capabilities> {
    if (!opts.refresh && this.#capabilities) return this.#capabilities
    this.#probing ??= this.#runProbe(opts.repository).finally(() => {
      this.#probing = undefined
    })
    this.#capabilities = await this.#probing
    return this.#capabilities
  }

  get capabilities(): Capabilities | undefined {
    return this.#capabilities
  }

  async #runProbe(repository: string | undefined): Promise<Capabilities> {
    const caps: Capabilities = {
      probedAt: new Date(),
      reachable: false,
      authKind: undefined,
      authenticated: undefined,
      apiVersion: undefined,
      catalog: undefined,
      deleteEnabled: undefined,
      tagDelete: undefined,
      referrersApi: undefined,
      probeRepository: repository === undefined ? undefined : assertRepository(repository),
      notes: [],
    }
    let ping: PingResult
    try {
      ping = await this.ping()
    } catch (err) {
      // Any HTTP answer (even a refused realm) proves the registry is reachable.
      caps.reachable = !(isRegistryError(err) && err.outcome === 'network')
      caps.notes.push(`ping failed: ${(err as Error).message}`)
      return caps
    }
    this.#authKnown = Promise.resolve(ping)
    Object.assign(caps, { reachable: true, authKind: ping.authKind, apiVersion: ping.apiVersion })
    await this.#probeStep(caps, 'login', async () => {
      if (ping.authKind !== 'none') caps.authenticated = await this.#probeLogin()
    })
    await this.#probeStep(caps, 'catalog', async () => {
      const first = await this.#probeCatalog(caps)
      caps.probeRepository ??= first
    })
    const repo = caps.probeRepository
    if (repo === undefined) {
      caps.notes.push('no repository to probe deletes and referrers in')
      return caps
    }
    await this.#probeStep(caps, 'delete', () => this.#probeDeletes(caps, repo))
    await this.#probeStep(caps, 'referrers', async () => {
      caps.referrersApi = await this.#probeReferrers(repo)
    })
    return caps
  }

  /** A failing probe step leaves its capability unknown and a note; the others still run. */
  async #probeStep(caps: Capabilities, step: string, run: () => Promise<void>): Promise<void> {
    try {
      await run()
    } catch (err) {
      if (!isRegistryError(err)) throw err
      caps.notes.push(`${step} probe failed: ${err.message}`)
    }
  }

  /** A token without scope (what `docker login` asks for) or Basic credentials at `/v2/`. */
  async #probeLogin(): Promise<boolean> {
    try {
      const reply = await this.#exchange({ method: 'GET', path: this.#path('/v2/'), scope: scopes.login })
      return reply.status === 200
    } catch (err) {
      if (isRegistryError(err) && err.code === 'REGENT_REGISTRY_AUTH_FAILED') return false
      throw err
    }
  }

  async #probeCatalog(caps: Capabilities): Promise<string | undefined> {
    const reply = await this.#exchange({
      method: 'GET',
      path: this.#path('/v2/_catalog?n=1'),
      scope: scopes.catalog,
      maxBytes: ERROR_BODY_BYTES,
    })
    caps.catalog = reply.status === 200
    if (!caps.catalog) return undefined
    return listField(reply.body, 'repositories', this.name)[0]
  }

  /**
   * distribution answers 405 `UNSUPPORTED` when deletes are disabled *before* looking the digest
   * up, so a random digest tells without deleting anything; 404 (or 202) means enabled. For a
   * tag, distribution 2.8 answers 400 `DIGEST_INVALID` (tag delete not implemented) while v3
   * answers 404 `MANIFEST_UNKNOWN` for an unknown tag: the answer is read, not assumed.
   */
  async #probeDeletes(caps: Capabilities, repository: string): Promise<void> {
    const digestProbe = await this.#probeDelete(repository, `sha256:${randomBytes(32).toString('hex')}`)
    caps.deleteEnabled = deletable(digestProbe)
    if (caps.deleteEnabled === undefined) caps.notes.push(`delete probe answered ${describe(digestProbe)}`)
    if (caps.deleteEnabled === false) {
      caps.tagDelete = false
      return
    }
    const tagProbe = await this.#probeDelete(repository, `regent-probe-${randomBytes(8).toString('hex')}`)
    caps.tagDelete = deletable(tagProbe)
    if (caps.tagDelete === undefined) caps.notes.push(`tag delete probe answered ${describe(tagProbe)}`)
  }

  async #probeDelete(repository: string, reference: string): Promise<Classification> {
    const path = this.#path(`/v2/${repository}/manifests/${reference}`)
    const reply = await this.#exchange({ method: 'DELETE', path, scope: scopes.delete(repository) })
    return reply.classification
  }

  async #probeReferrers(repository: string): Promise<boolean> {
    const digest = `sha256:${randomBytes(32).toString('hex')}`
    const reply = await this.#exchange({
      method: 'GET',
      path: this.#path(`/v2/${repository}/referrers/${digest}`),
      scope: scopes.pull(repository),
      headers: { accept: MediaTypes.OciIndex },
      maxBytes: ERROR_BODY_BYTES,
    })
    return reply.status === 200 || (reply.status === 404 && isIndexBody(reply))
  }

  // ------------------------------------------------------------------------------------------
  // Transport: auth, retries, body handling
  // ------------------------------------------------------------------------------------------

  /** Prefixes the path part of the registry URL, for registries served below a path. */
  #path(path: string): string {
    return `${this.#basePath}${path}`
  }

  async #expectOk(call: Call): Promise<Reply> {
    const reply = await this.#exchange(call)
    this.#ensureOk(reply, `${call.method} ${call.path}`)
    return reply
  }

  #ensureOk(reply: Reply, what: string): void {
    if (reply.classification.outcome !== 'ok') throw this.#fail(reply.classification, what)
  }

  #fail(c: Classification, what: string): RegistryError {
    return errorFor(c, { registry: this.name, request: what })
  }

  /**
   * One call with retries: GET and HEAD are retried on network failures, 5xx and 429 with
   * exponential backoff and jitter, waiting at least `Retry-After`; DELETE, PUT and POST never
   * are (undici's RetryHandler would retry DELETE and PUT by default — R5). Returns the last
   * answer whatever its status; throws only when no answer came.
   */
  async #exchange(call: Call): Promise<Reply> {
    const idempotent = call.method === 'GET' || call.method === 'HEAD'
    const attempts = idempotent && call.retry !== false ? this.#config.retries + 1 : 1
    for (let attempt = 1; ; attempt++) {
      let reply: Reply | undefined
      let failure: RegistryError | undefined
      try {
        reply = await this.#authorized(call)
      } catch (err) {
        if (!isRegistryError(err)) throw err
        failure = err
      }
      const c: Classification = reply?.classification ?? classificationOf(failure as RegistryError)
      const delay = attempt < attempts && isRetriable(c) ? this.#retryDelay(attempt, c) : undefined
      if (delay === undefined) {
        if (failure) throw failure
        return reply as Reply
      }
      this.#log.warn(
        {
          registry: this.name,
          request: `${call.method} ${call.path}`,
          attempt,
          outcome: c.outcome,
          status: c.status,
          delayMs: delay,
        },
        'retrying registry request',
      )
      await sleep(delay)
    }
  }

  #retryDelay(attempt: number, c: Classification): number | undefined {
    const step = Math.min(this.#retryMaxDelayMs, this.#retryBaseMs * 2 ** (attempt - 1))
    const backoff = Math.round(step * (0.5 + Math.random() / 2))
    if (c.retryAfterSeconds === undefined) return backoff
    if (c.retryAfterSeconds > this.#maxRetryAfterSeconds) return undefined
    return Math.max(c.retryAfterSeconds * 1000, backoff)
  }

  /** Sends with the right Authorization; on a 401 refreshes credentials once and resends. */
  async #authorized(call: Call): Promise<Reply> {
    if (call.scope === undefined) return this.#send(call, undefined)
    await this.#ensureAuthKnown()
    const sent = await this.#auth.header(call.scope)
    const reply = await this.#send(call, sent)
    if (reply.status !== 401) return reply
    const next = await this.#auth.refresh(call.scope, sent, reply.headers['www-authenticate'])
    if (next === undefined) return reply
    this.#log.debug(
      { registry: this.name, request: `${call.method} ${call.path}` },
      'registry answered 401, credentials refreshed',
    )
    return this.#send(call, next)
  }

  /**
   * The first authenticated call pings `/v2/` once to learn the scheme (as docker does). The ping
   * gets a single attempt: the call around it is the one retried, so retries do not multiply.
   */
  async #ensureAuthKnown(): Promise<void> {
    this.#authKnown ??= this.#ping(false).catch((err: unknown) => {
      this.#authKnown = undefined
      throw err
    })
    await this.#authKnown
  }

  async #send(call: Call, authorization: string | undefined): Promise<Reply> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...call.headers }
    if (authorization !== undefined) headers.authorization = authorization
    let res: Dispatcher.ResponseData
    try {
      res = await this.#pool.request({
        method: call.method,
        path: call.path,
        headers,
        // undici closes the connection after a HEAD unless told otherwise (a HEAD answer may carry
        // a Content-Length with no body, which some servers get wrong); registries get it right, so
        // every HEAD of a plan or verification pass would otherwise open a new TCP connection.
        ...(call.method === 'HEAD' && this.#config.keepAliveHead !== false ? { reset: false } : {}),
        ...(call.body ? { body: call.body } : {}),
      })
    } catch (err) {
      throw this.#networkError(err, call)
    }
    if (call.followRedirect && REDIRECTS.has(res.statusCode)) return this.#followStorageRedirect(call, res)
    return this.#read(call, res)
  }

  /** Reads, dumps or destroys the body — always one of them, so no socket is left hanging. */
  async #read(call: Call, res: Dispatcher.ResponseData): Promise<Reply> {
    const status = res.statusCode
    const headers = res.headers as Headers
    try {
      let body: Buffer = EMPTY
      if (call.method === 'HEAD') await res.body.dump()
      else if (status < 200 || status >= 300) body = await readAtMost(res.body, ERROR_BODY_BYTES)
      else if (call.maxBytes !== undefined) body = await this.#readCapped(res, call)
      else await res.body.dump()
      return {
        status,
        headers,
        body,
        classification: classifyResponse({ method: call.method, status, headers, body }),
      }
    } catch (err) {
      discard(res.body)
      throw this.#networkError(err, call)
    }
  }

  async #readCapped(res: Dispatcher.ResponseData, call: Call): Promise<Buffer> {
    const max = call.maxBytes as number
    const declared = Number(header(res.headers as Headers, 'content-length') ?? 0)
    if (declared > max) throw new ociErrors.RESPONSE_TOO_LARGE(`${call.method} ${call.path}`, max)
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > max) throw new ociErrors.RESPONSE_TOO_LARGE(`${call.method} ${call.path}`, max)
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks, size)
  }

  /**
   * Blob storage redirects (S3, GCS presigned URLs) point outside the registry: one hop is
   * followed through the outside agent with no Authorization, since the URL carries its own
   * signature and our credentials belong to the registry only.
   */
  async #followStorageRedirect(call: Call, res: Dispatcher.ResponseData): Promise<Reply> {
    const location = header(res.headers as Headers, 'location')
    await res.body.dump()
    const target = location === undefined ? undefined : new URL(location, new URL(call.path, this.url.origin))
    if (target === undefined || (target.protocol !== 'https:' && target.protocol !== 'http:')) {
      throw new ociErrors.REGISTRY_ERROR(
        this.name,
        `${call.method} ${call.path}`,
        'redirect without a usable Location',
      )
    }
    let next: Dispatcher.ResponseData
    try {
      next = await request(target, { method: call.method, dispatcher: this.#outside })
    } catch (err) {
      throw this.#networkError(err, call)
    }
    return this.#read(call, next)
  }

  #networkError(err: unknown, call: Call): unknown {
    if (isRegistryError(err)) return err
    const c = classifyNetworkError(err)
    if (c === undefined) return err
    const wrapped = errorFor(c, { registry: this.name, request: `${call.method} ${call.path}` })
    wrapped.cause = err
    return wrapped
  }

  #mismatch(path: string, expected: string, actual: string): RegistryError {
    const err = new ociErrors.DIGEST_MISMATCH(this.name, path, `expected ${expected}, got ${actual}`)
    return withDetails(err, { registry: this.name })
  }

  #checkReturnedDigest(reply: Reply, path: string, digest: string): void {
    const returned = header(reply.headers, 'docker-content-digest')
    if (returned !== undefined && returned !== digest) throw this.#mismatch(path, digest, returned)
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Reads the secrets named by the config once; a missing one fails construction, naming the source. */
export function resolveCredentials(
  config: RegistryConfig,
  env: Record<string, string | undefined>,
): Credentials {
  const auth = config.auth
  const credentials: Credentials = {}
  if (!auth) return credentials
  const missing = (why: string) => new ociErrors.CREDENTIALS_MISSING(config.name, why)
  let password: string | undefined
  if (auth.passwordEnv !== undefined) {
    password = env[auth.passwordEnv]
    if (!password) throw missing(`environment variable ${auth.passwordEnv} (auth.passwordEnv) is not set`)
  } else if (auth.passwordFile !== undefined) {
    try {
      password = readFileSync(auth.passwordFile, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw missing(`auth.passwordFile cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  if (password !== undefined) {
    if (auth.username === undefined) throw missing('auth.username is required with a password')
    credentials.username = auth.username
    credentials.password = new Secret(password)
  }
  if (auth.tokenEnv !== undefined) {
    const token = env[auth.tokenEnv]
    if (!token) throw missing(`environment variable ${auth.tokenEnv} (auth.tokenEnv) is not set`)
    credentials.registryToken = new Secret(token)
  }
  return credentials
}

function connectOptions(config: RegistryConfig): { timeout: number; ca?: string[] } {
  const connect: { timeout: number; ca?: string[] } = { timeout: config.timeouts.connectMs }
  // `ca` replaces Node's trust store, so the system roots are kept next to the configured CA:
  // token realms are often public services.
  if (config.caFile) connect.ca = [...rootCertificates, readFileSync(config.caFile, 'utf8')]
  return connect
}

function pageSize(n: number | undefined): number {
  const size = n ?? 100
  // distribution refuses n above its catalog.maxentries (1000) with PAGINATION_NUMBER_INVALID.
  if (!Number.isSafeInteger(size) || size < 1 || size > 1000) {
    throw new ociErrors.INVALID_REFERENCE('page size', `${size} (must be 1 to 1000)`)
  }
  return size
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** The `rel="next"` target of RFC 5988 Link headers (several links may share one header). */
export function nextLink(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(', ') : value
  if (!joined) return undefined
  for (const match of joined.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(match[2] ?? '')
    const value = rel?.[1] ?? rel?.[2]
    if (value?.toLowerCase().split(/\s+/).includes('next')) return match[1]
  }
  return undefined
}

function listField(body: Buffer, field: 'repositories' | 'tags', registry: string): string[] {
  let doc: unknown
  try {
    doc = JSON.parse(body.toString('utf8'))
  } catch {
    throw new ociErrors.REGISTRY_ERROR(registry, `list of ${field}`, 'body is not JSON')
  }
  const list = (doc as Record<string, unknown> | null)?.[field]
  if (list === null || list === undefined) return [] // distribution answers `"tags": null` for no tags
  if (!Array.isArray(list)) {
    throw new ociErrors.REGISTRY_ERROR(registry, `list of ${field}`, `${field} is not a list`)
  }
  return list.filter((v): v is string => typeof v === 'string')
}

export function digestOf(bytes: Buffer, algorithm: 'sha256' | 'sha512'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
}

/** OCI 1.1 referrers tag schema: `<alg>-<ref>`, truncated to the 128 characters a tag may have. */
export function referrersTag(digest: string): string {
  return assertDigest(digest).replace(':', '-').slice(0, 128)
}

function sameAlgorithm(a: string, b: string): boolean {
  return a.split(':')[0] === b.split(':')[0]
}

function isIndexBody(reply: Reply): boolean {
  if (baseMediaType(header(reply.headers, 'content-type')) === MediaTypes.OciIndex) return true
  try {
    return Array.isArray((JSON.parse(reply.body.toString('utf8')) as { manifests?: unknown }).manifests)
  } catch {
    return false
  }
}

function indexChildren(body: Buffer, registry: string): Descriptor[] {
  const manifest = parseManifest(body, MediaTypes.OciIndex)
  if (manifest.kind !== 'index') throw new ociErrors.REGISTRY_ERROR(registry, 'referrers', 'not an index')
  return manifest.manifests
}

function filterByType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? descriptors : descriptors.filter((d) => d.artifactType === artifactType)
}

function classificationOf(err: RegistryError): Classification {
  const c: Classification = { outcome: err.outcome ?? 'unknown' }
  if (err.registryStatus !== undefined) c.status = err.registryStatus
  if (err.retryAfterSeconds !== undefined) c.retryAfterSeconds = err.retryAfterSeconds
  if (err.code === 'REGENT_REGISTRY_TIMEOUT') c.network = 'timeout'
  return c
}

/** Probe answer → capability: 202/404 yes, 400/405/UNSUPPORTED no, anything else unknown. */
function deletable(c: Classification): boolean | undefined {
  if (c.outcome === 'ok' || c.outcome === 'not_found') return true
  if (c.outcome === 'delete_disabled') return false
  return undefined
}

function describe(c: Classification): string {
  return [c.status ?? c.network ?? c.outcome, c.ociCode].filter((p) => p !== undefined).join(' ')
}
