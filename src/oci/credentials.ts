import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import type { RegistryConfig } from '../registries/config-schema.js'
import { ociErrors } from './errors.js'

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

/** Reads the secrets named by the config once; a missing one fails construction, naming the source. */
export function resolveCredentials(
  config: RegistryConfig,
  env: Readonly<Record<string, string | undefined>>,
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

export function basicAuthorization(credentials: Credentials | undefined): string | undefined {
  if (credentials?.username === undefined || credentials.password === undefined) return undefined
  const pair = `${credentials.username}:${credentials.password.reveal()}`
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`
}
