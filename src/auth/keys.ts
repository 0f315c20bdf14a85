import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import type { AuthConfig } from './config-schema.js'

/**
 * Where verification keys come from, and which algorithms each source allows. The allowlist is
 * derived from the key, never from the token: an HS256 token "signed" with an RSA public key (the
 * classic algorithm-confusion forgery) is refused because HS256 is not allowed with a public key.
 */
export interface KeySource {
  algorithms: string[]
  /** PEM text or the HS256 secret: what fast-jwt takes as a key. */
  keyFor(header: { kid?: string; alg?: string }): Promise<string>
}

export class KeyConfigError extends Error {}

export function createKeySource(
  config: AuthConfig,
  fetchJwks: JwksFetcher = fetchJwksOverHttp,
): KeySource | null {
  const sources = [config.jwtSecret, config.publicKeyFile, config.jwksUrl].filter(Boolean)
  if (sources.length > 1) {
    throw new KeyConfigError(
      'auth: configure only one of auth.jwtSecret (REGENT_JWT_SECRET), auth.publicKeyFile, auth.jwksUrl',
    )
  }
  if (config.jwtSecret) {
    const secret = config.jwtSecret
    return { algorithms: allowed(config, ['HS256']), keyFor: async () => secret }
  }
  if (config.publicKeyFile) {
    const key = createPublicKey(readFileSync(config.publicKeyFile))
    const pem = toPem(key)
    return { algorithms: allowed(config, [algorithmOf(key)]), keyFor: async () => pem }
  }
  if (config.jwksUrl) {
    const jwks = new JwksCache(config.jwksUrl, config.jwksCooldownMs, config.jwksTimeoutMs, fetchJwks)
    return {
      algorithms: allowed(config, ['RS256', 'ES256']),
      keyFor: async (header) => toPem(await jwks.keyFor(header.kid)),
    }
  }
  return null
}

function allowed(config: AuthConfig, possible: string[]): string[] {
  if (!config.algorithms) return possible
  const both = config.algorithms.filter((a) => possible.includes(a))
  if (both.length === 0) {
    throw new KeyConfigError(
      `auth.algorithms: ${config.algorithms.join(', ')} cannot be verified with this key (${possible.join(', ')})`,
    )
  }
  return both
}

function toPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString()
}

function algorithmOf(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'ec') return 'ES256'
  throw new KeyConfigError(`auth.publicKeyFile: unsupported key type ${key.asymmetricKeyType}`)
}

export type JwksFetcher = (url: string, timeoutMs: number) => Promise<{ keys?: JsonWebKey[] }>

async function fetchJwksOverHttp(url: string, timeoutMs: number): Promise<{ keys?: JsonWebKey[] }> {
  // undici 7 follows no redirects unless told to: a JWKS that redirects is refused (not 200).
  const res = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  if (res.statusCode !== 200) {
    await res.body.dump()
    throw new Error(`JWKS answered ${res.statusCode}`)
  }
  return (await res.body.json()) as { keys?: JsonWebKey[] }
}

/** Keys older than this are refetched on next use, so a key removed from the set stops working. */
const JWKS_MAX_AGE_MS = 10 * 60_000

/**
 * Caches a JWKS by `kid`. An unknown kid triggers at most one refetch per cooldown, so a flood of
 * tokens with random kids cannot turn into a flood of requests to the identity provider; concurrent
 * misses share one fetch.
 */
export class JwksCache {
  private keys = new Map<string, KeyObject>()
  private fetchedAt = 0
  private inFlight: Promise<void> | null = null
  fetchCount = 0

  constructor(
    private readonly url: string,
    private readonly cooldownMs: number,
    private readonly timeoutMs: number,
    private readonly fetcher: JwksFetcher,
    private readonly now: () => number = Date.now,
  ) {}

  async keyFor(kid: string | undefined): Promise<KeyObject> {
    if (!kid) throw new Error('token has no kid')
    const stale = this.now() - this.fetchedAt > JWKS_MAX_AGE_MS
    if (stale || (!this.keys.has(kid) && this.now() - this.fetchedAt >= this.cooldownMs)) await this.refresh()
    const key = this.keys.get(kid)
    if (!key) throw new Error('unknown signing key')
    return key
  }

  private refresh(): Promise<void> {
    this.inFlight ??= (async () => {
      try {
        this.fetchCount++
        // Counted as fetched even if it fails, so a broken provider is not hammered either.
        this.fetchedAt = this.now()
        const { keys = [] } = await this.fetcher(this.url, this.timeoutMs)
        const next = new Map<string, KeyObject>()
        for (const jwk of keys) {
          const kid = (jwk as { kid?: string }).kid
          if (!kid || (jwk as { use?: string }).use === 'enc') continue
          try {
            next.set(kid, createPublicKey({ key: jwk, format: 'jwk' }))
          } catch {}
        }
        this.keys = next
      } finally {
        this.inFlight = null
      }
    })()
    return this.inFlight
  }
}
