import { readFileSync } from 'node:fs'
import { rootCertificates } from 'node:tls'
import { Agent, type Dispatcher, Pool, request } from 'undici'
import { backoffCeiling } from '../lib/backoff.js'
import { secretEnv } from '../lib/secrets.js'
import type { RegistryConfig } from '../registries/config-schema.js'
import { sleep, untilAborted } from './abort.js'
import { Authenticator, type AuthKind } from './auth.js'
import { discard, readAtMost, readCapped } from './body.js'
import { resolveCredentials } from './credentials.js'
import {
  type Classification,
  classifyNetworkError,
  classifyResponse,
  errorFor,
  isRegistryError,
  isRetriable,
  ociErrors,
  type RegistryError,
  withDetails,
} from './errors.js'

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

type Method = 'GET' | 'HEAD' | 'DELETE' | 'PUT' | 'POST'
export type Headers = Record<string, string | string[] | undefined>

export interface Call {
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
  /** Aborts the request in flight and the wait before a retry; the call rejects with its reason. */
  signal?: AbortSignal | undefined
}

export interface Reply {
  status: number
  headers: Headers
  body: Buffer
  classification: Classification
}

const EMPTY = Buffer.alloc(0)
export const ERROR_BODY_BYTES = 64 * 1024
const REDIRECTS = new Set([301, 302, 303, 307, 308])
const NO_LOG: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/**
 * Sent on every registry call. Registries report Regent's own manifest HEADs and GETs as pulls in
 * their notifications; this lets the events ingestion tell them from real pulls (src/registry-events).
 */
export const USER_AGENT = 'regent/0.1.0'

/**
 * How calls reach one registry: one undici Pool to its origin, bounded by `maxConcurrency`, with
 * connect, headers and body timeouts; a separate Agent for token realms and storage redirects;
 * authentication, bounded retries of idempotent calls, and bodies that are always consumed.
 */
export class Transport {
  readonly registry: string
  readonly url: URL
  readonly log: Logger
  readonly #config: RegistryConfig
  readonly #basePath: string
  readonly #pool: Pool
  readonly #outside: Agent
  readonly #auth: Authenticator
  readonly #retryBaseMs: number
  readonly #retryMaxDelayMs: number
  readonly #maxRetryAfterSeconds: number
  #authKnown: Promise<PingResult> | undefined

  constructor(config: RegistryConfig, options: RegistryClientOptions = {}) {
    this.registry = config.name
    this.url = new URL(config.url)
    this.#config = config
    this.#basePath = this.url.pathname.replace(/\/+$/, '')
    this.log = options.logger ?? NO_LOG
    this.#retryBaseMs = options.retryBaseMs ?? 250
    this.#retryMaxDelayMs = options.retryMaxDelayMs ?? 10_000
    this.#maxRetryAfterSeconds = options.maxRetryAfterSeconds ?? 60
    const credentials = resolveCredentials(config, secretEnv(options.env))
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

  /** Prefixes the path part of the registry URL, for registries served below a path. */
  path(path: string): string {
    return `${this.#basePath}${path}`
  }

  /** True when `path` (as sent) is below the registry's own API, `<base path>/v2/`. */
  isApiPath(path: string): boolean {
    return path.startsWith(`${this.#basePath}/v2/`)
  }

  /** Anonymous `GET /v2/`: reachability and the auth scheme the registry asks for. */
  async ping(retry: boolean): Promise<PingResult> {
    const reply = await this.exchange({ method: 'GET', path: this.path('/v2/'), scope: undefined, retry })
    if (reply.status !== 200 && reply.status !== 401) throw this.fail(reply.classification, 'GET /v2/')
    this.#auth.learn(reply.status, reply.headers['www-authenticate'])
    const apiVersion = header(reply.headers, 'docker-distribution-api-version')
    const result: PingResult = { status: reply.status, authKind: this.#auth.kind ?? 'none' }
    if (apiVersion !== undefined) result.apiVersion = apiVersion
    return result
  }

  /** A ping made elsewhere (the capability probe) already taught the auth scheme. */
  authLearned(ping: PingResult): void {
    this.#authKnown = Promise.resolve(ping)
  }

  async expectOk(call: Call): Promise<Reply> {
    const reply = await this.exchange(call)
    this.ensureOk(reply, `${call.method} ${call.path}`)
    return reply
  }

  ensureOk(reply: Reply, what: string): void {
    if (reply.classification.outcome !== 'ok') throw this.fail(reply.classification, what)
  }

  fail(c: Classification, what: string): RegistryError {
    return errorFor(c, { registry: this.registry, request: what })
  }

  mismatch(path: string, expected: string, actual: string): RegistryError {
    const err = new ociErrors.DIGEST_MISMATCH(this.registry, path, `expected ${expected}, got ${actual}`)
    return withDetails(err, { registry: this.registry })
  }

  /** A registry that names another digest for what we sent stored something else. */
  checkReturnedDigest(reply: Reply, path: string, digest: string): void {
    const returned = header(reply.headers, 'docker-content-digest')
    if (returned !== undefined && returned !== digest) throw this.mismatch(path, digest, returned)
  }

  /**
   * One call with retries: GET and HEAD are retried on network failures, 5xx and 429 with
   * exponential backoff and jitter, waiting at least `Retry-After`; DELETE, PUT and POST never
   * are (undici's RetryHandler would retry DELETE and PUT by default, and a retried DELETE whose
   * first answer was lost comes back 404). Returns the last answer whatever its status; throws
   * only when no answer came. An aborted signal ends the call at once with its reason, whether a
   * request is in flight or a retry is being waited for, and no further attempt is made.
   */
  async exchange(call: Call): Promise<Reply> {
    const { signal } = call
    const idempotent = call.method === 'GET' || call.method === 'HEAD'
    const attempts = idempotent && call.retry !== false ? this.#config.retries + 1 : 1
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted()
      let reply: Reply | undefined
      let failure: RegistryError | undefined
      try {
        reply = await this.#authorized(call)
      } catch (err) {
        if (signal?.aborted) throw signal.reason
        if (!isRegistryError(err)) throw err
        failure = err
      }
      const c: Classification = reply?.classification ?? classificationOf(failure as RegistryError)
      const delay = attempt < attempts && isRetriable(c) ? this.#retryDelay(attempt, c) : undefined
      if (delay === undefined) {
        if (failure) throw failure
        return reply as Reply
      }
      this.log.warn(
        {
          registry: this.registry,
          request: `${call.method} ${call.path}`,
          attempt,
          outcome: c.outcome,
          status: c.status,
          delayMs: delay,
        },
        'retrying registry request',
      )
      await sleep(delay, signal)
    }
  }

  #retryDelay(attempt: number, c: Classification): number | undefined {
    const step = backoffCeiling(attempt, { baseMs: this.#retryBaseMs, maxMs: this.#retryMaxDelayMs })
    const backoff = Math.round(step * (0.5 + Math.random() / 2))
    if (c.retryAfterSeconds === undefined) return backoff
    if (c.retryAfterSeconds > this.#maxRetryAfterSeconds) return undefined
    return Math.max(c.retryAfterSeconds * 1000, backoff)
  }

  /** Sends with the right Authorization; on a 401 refreshes credentials once and resends. */
  async #authorized(call: Call): Promise<Reply> {
    if (call.scope === undefined) return this.#send(call, undefined)
    await untilAborted(this.#ensureAuthKnown(), call.signal)
    const sent = await untilAborted(this.#auth.header(call.scope), call.signal)
    const reply = await this.#send(call, sent)
    if (reply.status !== 401) return reply
    const refreshed = this.#auth.refresh(call.scope, sent, reply.headers['www-authenticate'])
    const next = await untilAborted(refreshed, call.signal)
    if (next === undefined) return reply
    this.log.debug(
      { registry: this.registry, request: `${call.method} ${call.path}` },
      'registry answered 401, credentials refreshed',
    )
    return this.#send(call, next)
  }

  /**
   * The first authenticated call pings `/v2/` once to learn the scheme (as docker does). The ping
   * gets a single attempt: the call around it is the one retried, so retries do not multiply.
   * Concurrent calls share it, so it takes no caller's signal.
   */
  async #ensureAuthKnown(): Promise<void> {
    this.#authKnown ??= this.ping(false).catch((err: unknown) => {
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
        ...(call.signal ? { signal: call.signal } : {}),
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
    const what = `${call.method} ${call.path}`
    try {
      let body: Buffer = EMPTY
      if (call.method === 'HEAD') await res.body.dump()
      else if (status < 200 || status >= 300) body = await readAtMost(res.body, ERROR_BODY_BYTES)
      else if (call.maxBytes !== undefined)
        body = await readCapped(res.body, header(headers, 'content-length'), call.maxBytes, what)
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
        this.registry,
        `${call.method} ${call.path}`,
        'redirect without a usable Location',
      )
    }
    let next: Dispatcher.ResponseData
    try {
      next = await request(target, {
        method: call.method,
        dispatcher: this.#outside,
        ...(call.signal ? { signal: call.signal } : {}),
      })
    } catch (err) {
      throw this.#networkError(err, call)
    }
    return this.#read(call, next)
  }

  #networkError(err: unknown, call: Call): unknown {
    if (isRegistryError(err)) return err
    const c = classifyNetworkError(err)
    if (c === undefined) return err
    const wrapped = errorFor(c, { registry: this.registry, request: `${call.method} ${call.path}` })
    wrapped.cause = err
    return wrapped
  }
}

export function header(headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** The `Content-Length` a HEAD announced, or -1 when it is missing or not a whole number. */
export function contentLength(headers: Headers): number {
  const size = Number(header(headers, 'content-length') ?? Number.NaN)
  return Number.isSafeInteger(size) ? size : -1
}

function connectOptions(config: RegistryConfig): { timeout: number; ca?: string[] } {
  const connect: { timeout: number; ca?: string[] } = { timeout: config.timeouts.connectMs }
  // `ca` replaces Node's trust store, so the system roots are kept next to the configured CA:
  // token realms are often public services.
  if (config.caFile) connect.ca = [...rootCertificates, readFileSync(config.caFile, 'utf8')]
  return connect
}

function classificationOf(err: RegistryError): Classification {
  const c: Classification = { outcome: err.outcome ?? 'unknown' }
  if (err.registryStatus !== undefined) c.status = err.registryStatus
  if (err.retryAfterSeconds !== undefined) c.retryAfterSeconds = err.retryAfterSeconds
  if (err.code === 'REGENT_REGISTRY_TIMEOUT') c.network = 'timeout'
  return c
}
