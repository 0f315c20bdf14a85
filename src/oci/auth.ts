import { inspect } from 'node:util'
import { type Dispatcher, request } from 'undici'
import {
  classifyNetworkError,
  classifyResponse,
  errorFor,
  isRegistryError,
  ociErrors,
  type RegistryError,
  withDetails,
} from './errors.js'

/**
 * Registry authentication: challenge parsing, the realm allowlist, token fetch and the token cache.
 * Flow per distribution `docs/spec/auth/token.md`: the registry answers 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client GETs the realm with
 * `service` and `scope` (Basic auth with its credentials) and receives `token`/`access_token` with
 * `expires_in` (60 s when absent).
 *
 * The realm is chosen by whoever answers the 401, so it is attacker-controlled input (containerd
 * CVE-2020-15157, go-containerregistry #2193, #2291): credentials go only to a realm whose origin is
 * the registry's own or listed in its `tokenRealms`, over https (plain http only on loopback), and
 * token requests follow no redirect.
 */

export type AuthKind = 'none' | 'basic' | 'bearer'

export interface Challenge {
  /** Lower-cased auth scheme, e.g. `bearer`. */
  scheme: string
  /** Parameters with lower-cased names and unquoted values. */
  params: Record<string, string>
  token68?: string
}

/** Holds a credential so that logging, `JSON.stringify` or `inspect` never shows it. */
export class Secret {
  readonly #value: string
  constructor(value: string) {
    this.#value = value
  }
  reveal(): string {
    return this.#value
  }
  toString(): string {
    return '[redacted]'
  }
  toJSON(): string {
    return '[redacted]'
  }
  [inspect.custom](): string {
    return 'Secret([redacted])'
  }
}

export interface Credentials {
  username?: string
  password?: Secret
  /** A bearer token sent as is to the registry (Docker's `registrytoken`), no token server involved. */
  registryToken?: Secret
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate (RFC 9110 §11.6.1): challenges and their parameters are both comma separated,
// so a comma ends a parameter, and a token *not* followed by `=` starts the next challenge.
// ---------------------------------------------------------------------------------------------

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/

export function parseWwwAuthenticate(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return []
  const values = typeof header === 'string' ? [header] : header
  return values.flatMap((value) => new ChallengeScanner(value).challenges())
}

class ChallengeScanner {
  #pos = 0
  constructor(private readonly text: string) {}

  challenges(): Challenge[] {
    const found: Challenge[] = []
    let current: Challenge | undefined
    for (;;) {
      this.#skip(/[\s,]/)
      if (this.#pos >= this.text.length) return found
      const name = this.#token()
      if (name === '') {
        this.#pos++ // a stray character: skip it rather than fail the whole header
        continue
      }
      this.#skip(/[ \t]/)
      if (current && this.text[this.#pos] === '=') {
        this.#pos++
        this.#skip(/[ \t]/)
        current.params[name.toLowerCase()] = this.#value()
        continue
      }
      current = { scheme: name.toLowerCase(), params: {} }
      found.push(current)
      const token68 = this.#token68()
      if (token68 !== undefined) current.token68 = token68
    }
  }

  #skip(chars: RegExp): void {
    while (this.#pos < this.text.length && chars.test(this.text[this.#pos] as string)) this.#pos++
  }

  #token(): string {
    const start = this.#pos
    while (this.#pos < this.text.length && TCHAR.test(this.text[this.#pos] as string)) this.#pos++
    return this.text.slice(start, this.#pos)
  }

  /** token68 only when it stands alone: `Negotiate abc==` but not `Bearer realm="x"`. */
  #token68(): string | undefined {
    const match = TOKEN68.exec(this.text.slice(this.#pos))
    if (!match) return undefined
    const rest = this.text.slice(this.#pos + match[0].length).trimStart()
    if (rest !== '' && !rest.startsWith(',')) return undefined
    this.#pos += match[0].length
    return match[0]
  }

  #value(): string {
    if (this.text[this.#pos] !== '"') {
      // Unquoted values are tokens in the RFC; some servers send URLs unquoted, so read to the
      // next comma or space instead of the next non-tchar.
      const start = this.#pos
      while (this.#pos < this.text.length && !/[\s,]/.test(this.text[this.#pos] as string)) this.#pos++
      return this.text.slice(start, this.#pos)
    }
    let out = ''
    this.#pos++
    while (this.#pos < this.text.length) {
      const ch = this.text[this.#pos++] as string
      if (ch === '"') return out
      if (ch === '\\' && this.#pos < this.text.length) out += this.text[this.#pos++]
      else out += ch
    }
    return out // unterminated quote: keep what was there
  }
}

// ---------------------------------------------------------------------------------------------
// Realm allowlist
// ---------------------------------------------------------------------------------------------

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase()
  if (host === 'localhost' || host === '[::1]' || host === '::1') return true
  const parts = host.split('.')
  return (
    parts.length === 4 && parts[0] === '127' && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)
  )
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin
  } catch {
    return undefined
  }
}

/**
 * Returns the realm URL when credentials may be sent there, else throws
 * `REGENT_TOKEN_REALM_REFUSED`. Allowlist entries are compared by origin (scheme, host and port),
 * so another port on the same host is another realm.
 */
export function checkRealm(
  registry: string,
  realm: string,
  registryUrl: URL,
  allowlist: readonly string[],
): URL {
  let url: URL
  try {
    url = new URL(realm)
  } catch {
    throw refused(registry, 'the realm is not an absolute URL')
  }
  if (url.username !== '' || url.password !== '') {
    throw refused(registry, `realm on ${url.host} carries user info`)
  }
  const plainLoopback = url.protocol === 'http:' && isLoopbackHost(url.hostname)
  if (url.protocol !== 'https:' && !plainLoopback) throw refused(registry, `realm ${url.origin} is not https`)
  const allowed =
    url.origin === registryUrl.origin || allowlist.some((entry) => originOf(entry) === url.origin)
  if (!allowed) {
    throw refused(registry, `realm ${url.origin} is neither the registry's origin nor listed in tokenRealms`)
  }
  return url
}

function refused(registry: string, why: string): RegistryError {
  return withDetails(new ociErrors.TOKEN_REALM_REFUSED(registry, why), { registry })
}

// ---------------------------------------------------------------------------------------------
// Scopes: the least the call needs (distribution `registry/handlers/app.go`: GET/HEAD → pull,
// PUT/POST/PATCH → pull,push, DELETE → delete; `_catalog` → registry:catalog:*).
// ---------------------------------------------------------------------------------------------

export const scopes = {
  pull: (repository: string): string => `repository:${repository}:pull`,
  /** `pull` too, because a delete is preceded and followed by HEADs of the same repository. */
  delete: (repository: string): string => `repository:${repository}:pull,delete`,
  push: (repository: string): string => `repository:${repository}:pull,push`,
  catalog: 'registry:catalog:*',
  /** An empty scope: a token that only proves the credentials (what `docker login` asks for). */
  login: '',
} as const

// ---------------------------------------------------------------------------------------------
// Token cache: in memory only, per (realm, service, scope), until `expires_in` minus a margin.
// ---------------------------------------------------------------------------------------------

export interface TokenGrant {
  token: string
  expiresInSeconds: number
}

/** The spec's default when `expires_in` is absent. */
export const DEFAULT_TOKEN_SECONDS = 60

/** Renew 10 % early (at most 10 s) so a token does not expire between cache read and use. */
export function cacheLifetimeMs(expiresInSeconds: number): number {
  const ms = expiresInSeconds * 1000
  return Math.max(0, ms - Math.min(10_000, ms * 0.1))
}

export class TokenCache {
  readonly #entries = new Map<string, { token: string; expiresAt: number }>()
  readonly #inflight = new Map<string, Promise<string>>()
  constructor(private readonly now: () => number = Date.now) {}

  /** One fetch per key at a time: concurrent callers share it. */
  async get(key: string, fetch: () => Promise<TokenGrant>): Promise<string> {
    const entry = this.#entries.get(key)
    if (entry && entry.expiresAt > this.now()) return entry.token
    const running = this.#inflight.get(key)
    if (running) return running
    const started = fetch()
      .then((grant) => {
        this.#entries.set(key, {
          token: grant.token,
          expiresAt: this.now() + cacheLifetimeMs(grant.expiresInSeconds),
        })
        return grant.token
      })
      .finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, started)
    return started
  }

  /** Drops the token a registry refused, unless another caller already replaced it. */
  invalidate(key: string, token: string | undefined): void {
    const entry = this.#entries.get(key)
    if (entry && (token === undefined || entry.token === token)) this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }

  get size(): number {
    return this.#entries.size
  }
}

// ---------------------------------------------------------------------------------------------
// Token fetch
// ---------------------------------------------------------------------------------------------

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024

export interface TokenRequest {
  registry: string
  dispatcher: Dispatcher
  realm: URL
  service?: string
  scope?: string
  credentials?: Credentials
}

/** GET realm?service=…&scope=… (Basic auth when we have credentials). Follows no redirect. */
export async function fetchToken(req: TokenRequest): Promise<TokenGrant> {
  const url = new URL(req.realm.href)
  if (req.service) url.searchParams.append('service', req.service)
  if (req.scope) url.searchParams.append('scope', req.scope)
  const headers: Record<string, string> = { accept: 'application/json' }
  const basic = basicAuthorization(req.credentials)
  if (basic) headers.authorization = basic
  const where = `GET ${url.origin}${url.pathname}`

  let res: Dispatcher.ResponseData
  try {
    res = await request(url, { method: 'GET', headers, dispatcher: req.dispatcher })
  } catch (err) {
    throw tokenNetworkError(err, req.registry, where)
  }
  try {
    return await readGrant(res, req.registry, url, where)
  } catch (err) {
    discard(res.body)
    throw tokenNetworkError(err, req.registry, where)
  }
}

async function readGrant(
  res: Dispatcher.ResponseData,
  registry: string,
  url: URL,
  where: string,
): Promise<TokenGrant> {
  const status = res.statusCode
  if (status >= 300 && status < 400) {
    // Following would send nothing secret (undici drops no headers we did not set), but a
    // redirect out of the allowlist is how realm validation gets bypassed (go-containerregistry
    // #2291), so it is refused outright.
    await res.body.dump()
    throw refused(
      registry,
      `realm ${url.origin} answered ${status} (a redirect); token requests follow no redirects`,
    )
  }
  if (status !== 200) {
    const body = await readAtMost(res.body, MAX_TOKEN_RESPONSE_BYTES)
    const c = classifyResponse({ method: 'GET', status, headers: res.headers, body })
    if (
      c.outcome === 'unauthorized' ||
      c.outcome === 'denied' ||
      c.outcome === 'rejected' ||
      c.outcome === 'not_found'
    ) {
      const err = new ociErrors.REGISTRY_AUTH_FAILED(
        registry,
        `token server ${url.origin} answered ${status}`,
      )
      throw withDetails(err, { registry, outcome: c.outcome, registryStatus: status })
    }
    throw errorFor(c, { registry, request: where })
  }
  const body = await readAtMost(res.body, MAX_TOKEN_RESPONSE_BYTES)
  return parseGrant(body, registry, url)
}

function parseGrant(body: Buffer, registry: string, url: URL): TokenGrant {
  let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown }
  try {
    doc = JSON.parse(body.toString('utf8'))
  } catch {
    throw new ociErrors.REGISTRY_AUTH_FAILED(
      registry,
      `token server ${url.origin} answered something that is not JSON`,
    )
  }
  const token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : doc.access_token
  if (typeof token !== 'string' || token === '') {
    throw new ociErrors.REGISTRY_AUTH_FAILED(registry, `token server ${url.origin} answered without a token`)
  }
  const expires = doc.expires_in
  const expiresInSeconds =
    typeof expires === 'number' && Number.isFinite(expires) && expires > 0 ? expires : DEFAULT_TOKEN_SECONDS
  return { token, expiresInSeconds }
}

function tokenNetworkError(err: unknown, registry: string, where: string): unknown {
  if (isRegistryError(err)) return err
  const c = classifyNetworkError(err)
  return c ? errorFor(c, { registry, request: where }) : err
}

export function basicAuthorization(credentials: Credentials | undefined): string | undefined {
  if (credentials?.username === undefined || credentials.password === undefined) return undefined
  const pair = `${credentials.username}:${credentials.password.reveal()}`
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`
}

/**
 * Drops a body we will not read. undici's body emits RequestAbortedError when destroyed before its
 * end, and an 'error' without a listener would crash the process, hence the no-op listener.
 */
export function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {})
  body.destroy()
}

/** Reads up to `max` bytes and destroys the rest: error and token bodies are small or useless. */
export async function readAtMost(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buf = chunk as Buffer
    chunks.push(buf)
    size += buf.length
    if (size >= max) {
      discard(body)
      break
    }
  }
  return Buffer.concat(chunks, size).subarray(0, max)
}

// ---------------------------------------------------------------------------------------------
// Authenticator: what a registry wants, and the Authorization value for a call.
// ---------------------------------------------------------------------------------------------

export interface AuthenticatorOptions {
  registry: string
  registryUrl: URL
  tokenRealms: readonly string[]
  credentials: Credentials
  /** Dispatcher for token realms, separate from the registry's pool. */
  tokenDispatcher: Dispatcher
  now?: () => number
}

export class Authenticator {
  #kind: AuthKind | undefined
  #bearer: { realm: URL; service?: string } | undefined
  readonly #cache: TokenCache
  constructor(private readonly opts: AuthenticatorOptions) {
    this.#cache = new TokenCache(opts.now)
  }

  /** Unknown until `learn` saw the answer to `GET /v2/`. */
  get kind(): AuthKind | undefined {
    return this.#kind
  }

  /** Learns the scheme from a `/v2/` answer or a 401; refuses a bearer realm outside the allowlist. */
  learn(status: number, wwwAuthenticate: string | string[] | undefined): void {
    if (status !== 401) {
      this.#kind ??= 'none'
      return
    }
    const challenges = parseWwwAuthenticate(wwwAuthenticate)
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    if (bearer) {
      this.#bearer = this.#bearerFrom(bearer)
      this.#kind = 'bearer'
      return
    }
    if (challenges.some((c) => c.scheme === 'basic')) this.#kind = 'basic'
  }

  #bearerFrom(challenge: Challenge): { realm: URL; service?: string } {
    const { registry, registryUrl, tokenRealms } = this.opts
    if (challenge.params.realm === undefined) {
      // A bearer challenge without realm: tokens cannot be fetched; a static token may still work.
      if (this.opts.credentials.registryToken) return { realm: registryUrl }
      throw refused(registry, 'bearer challenge without a realm')
    }
    const realm = checkRealm(registry, challenge.params.realm, registryUrl, tokenRealms)
    const service = challenge.params.service
    return service === undefined ? { realm } : { realm, service }
  }

  /** The Authorization value for a call needing `scope`, or undefined for anonymous. */
  async header(scope: string): Promise<string | undefined> {
    const { credentials } = this.opts
    if (this.#kind === 'basic') return basicAuthorization(credentials)
    if (this.#kind !== 'bearer') return undefined
    if (credentials.registryToken) return `Bearer ${credentials.registryToken.reveal()}`
    const bearer = this.#bearer
    if (!bearer) return undefined
    const token = await this.#cache.get(this.#key(bearer, scope), () =>
      fetchToken({
        registry: this.opts.registry,
        dispatcher: this.opts.tokenDispatcher,
        realm: bearer.realm,
        scope,
        credentials,
        ...(bearer.service === undefined ? {} : { service: bearer.service }),
      }),
    )
    return `Bearer ${token}`
  }

  /**
   * After a 401: re-learns the challenge (the realm is checked again, it may have changed), drops
   * the refused token and returns a new Authorization value, or undefined when nothing new can be
   * tried (Basic credentials refused, a static token refused, no credentials). Callers do this at
   * most once per call, so an always-401 registry costs one extra token fetch, not a loop.
   */
  async refresh(
    scope: string,
    sent: string | undefined,
    wwwAuthenticate: string | string[] | undefined,
  ): Promise<string | undefined> {
    this.learn(401, wwwAuthenticate)
    if (this.#kind === 'bearer' && this.#bearer && sent?.startsWith('Bearer ')) {
      this.#cache.invalidate(this.#key(this.#bearer, scope), sent.slice('Bearer '.length))
    }
    const next = await this.header(scope)
    return next === undefined || next === sent ? undefined : next
  }

  #key(bearer: { realm: URL; service?: string }, scope: string): string {
    return `${bearer.realm.href}\n${bearer.service ?? ''}\n${scope}`
  }

  clearTokens(): void {
    this.#cache.clear()
  }
}
