import type { Dispatcher } from 'undici'
import { type Challenge, checkRealm, parseWwwAuthenticate, realmRefused } from './challenge.js'
import { basicAuthorization, type Credentials } from './credentials.js'
import { fetchToken, TokenCache } from './tokens.js'

/**
 * Registry authentication: which scheme a registry asks for, the scope a call needs, and the
 * Authorization value to send. Flow per distribution `docs/spec/auth/token.md`: the registry
 * answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` (parsed and its realm
 * checked in challenge.ts); the token fetched from that realm is cached per scope (tokens.ts).
 */

export type AuthKind = 'none' | 'basic' | 'bearer'

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
      throw realmRefused(registry, 'bearer challenge without a realm')
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
