import { ociErrors, type RegistryError, withDetails } from './errors.js'

/**
 * What a registry's 401 says: the `WWW-Authenticate` challenges, and whether the token realm a
 * bearer challenge names may receive our credentials.
 *
 * The realm is chosen by whoever answers the 401, so it is attacker-controlled input (containerd
 * CVE-2020-15157, go-containerregistry #2193, #2291): credentials go only to a realm whose origin is
 * the registry's own or listed in its `tokenRealms`, over https (plain http only on loopback).
 */

export interface Challenge {
  /** Lower-cased auth scheme, e.g. `bearer`. */
  scheme: string
  /** Parameters with lower-cased names and unquoted values. */
  params: Record<string, string>
  token68?: string
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
    throw realmRefused(registry, 'the realm is not an absolute URL')
  }
  if (url.username !== '' || url.password !== '') {
    throw realmRefused(registry, `realm on ${url.host} carries user info`)
  }
  const plainLoopback = url.protocol === 'http:' && isLoopbackHost(url.hostname)
  if (url.protocol !== 'https:' && !plainLoopback) {
    throw realmRefused(registry, `realm ${url.origin} is not https`)
  }
  const allowed =
    url.origin === registryUrl.origin || allowlist.some((entry) => originOf(entry) === url.origin)
  if (!allowed) {
    throw realmRefused(
      registry,
      `realm ${url.origin} is neither the registry's origin nor listed in tokenRealms`,
    )
  }
  return url
}

export function realmRefused(registry: string, why: string): RegistryError {
  return withDetails(new ociErrors.TOKEN_REALM_REFUSED(registry, why), { registry })
}
