import { type Dispatcher, request } from 'undici'
import { discard, readAtMost } from './body.js'
import { realmRefused } from './challenge.js'
import { basicAuthorization, type Credentials } from './credentials.js'
import {
  classifyNetworkError,
  classifyResponse,
  errorFor,
  isRegistryError,
  ociErrors,
  withDetails,
} from './errors.js'

/**
 * Bearer tokens (distribution `docs/spec/auth/token.md`): the client GETs the realm with `service`
 * and `scope` (Basic auth with its credentials) and receives `token`/`access_token` with
 * `expires_in` (60 s when absent). Tokens are kept in memory only, until they expire; token
 * requests follow no redirect.
 */

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
    throw realmRefused(
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
