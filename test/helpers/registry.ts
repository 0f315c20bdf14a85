import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID, sign, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import bcrypt from 'bcryptjs'
import { request } from 'undici'
import type { RegistryConfig } from '../../src/registries/config-schema.js'
import { selfSignedCertificate } from './certificates.js'
import { spawnTiedToParent, stopChild } from './child.js'

/**
 * Real `docker-registry` processes (Debian package, distribution 2.8.x, `docker-registry serve
 * <config.yml>`) on a free loopback port, each with its own temp folder, and the token server the
 * token-auth variant needs. Every start function returns an object whose `stop()` kills what it
 * started and removes its folder; pass it to `t.teardown`, or use `withRegistry(t, …)`.
 */

const REGISTRY_BIN = process.env.REGENT_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry'

export interface Teardownable {
  teardown(fn: () => unknown): void
}

export interface BasicCredentials {
  username: string
  password: string
}

export interface RegistryOptions {
  /** `none` (default), `htpasswd` (Basic auth, bcrypt) or `token` (Bearer, helper token server). */
  auth?: 'none' | 'htpasswd' | 'token'
  /** `storage.delete.enabled`; true unless said otherwise. */
  deleteEnabled?: boolean
  /** `storage.maintenance.readonly.enabled`: DELETE and PUT are not even routed (bare 405). */
  readOnly?: boolean
  /** `storage.cache.blobdescriptor: inmemory` (distribution's default in its sample config). */
  blobDescriptorCache?: boolean
  credentials?: BasicCredentials
  tokenServer?: Omit<TokenServerOptions, 'users'>
  /** Reuse a storage folder (e.g. to restart a registry read-only over the same data). */
  storageDir?: string
  /** `notifications.endpoints`: one endpoint the registry posts its events to. */
  notifications?: NotificationEndpoint
  /** distribution's access log (one combined-format line per request, on stdout); off unless set. */
  accessLog?: boolean
  /** Every chunk the registry writes to stdout or stderr (the access log, when enabled). */
  onOutput?: (text: string) => void
}

/** One entry of distribution's `notifications.endpoints` (docs: configuration.md, notifications). */
export interface NotificationEndpoint {
  url: string
  /** Sent with every envelope; each header has one value here (distribution takes a list). */
  headers?: Record<string, string>
  /** Go durations. Short ones keep tests quick: distribution's defaults are 1s and 1s. */
  timeout?: string
  backoff?: string
  /** Failures before the endpoint backs off. */
  threshold?: number
  /** Events about these media types are not sent (blobs: `application/octet-stream`). */
  ignoredMediaTypes?: string[]
}

export interface TestRegistry {
  /** `http://127.0.0.1:<port>` */
  url: string
  port: number
  /** Temp folder holding config, htpasswd, logs; removed by stop(). */
  dir: string
  /** `storage.filesystem.rootdirectory` */
  storageDir: string
  configPath: string
  pid: number
  credentials?: BasicCredentials
  tokenServer?: TokenServer
  /** Last lines of the registry's stdout/stderr, for failure messages. */
  logs(): string
  stop(): Promise<void>
}

const DEFAULT_CREDENTIALS: BasicCredentials = { username: 'regent', password: 'test-password-0' }
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(tmpdir(), 'regent-registry-'))
  const storageDir = opts.storageDir ?? path.join(dir, 'storage')
  const auth = opts.auth ?? 'none'
  const credentials = auth === 'none' ? undefined : (opts.credentials ?? DEFAULT_CREDENTIALS)
  let tokenServer: TokenServer | undefined
  try {
    let authYaml = ''
    if (auth === 'htpasswd' && credentials) authYaml = await htpasswdAuth(dir, credentials)
    if (auth === 'token' && credentials) {
      tokenServer = await startTokenServer({
        ...opts.tokenServer,
        users: { [credentials.username]: credentials.password },
      })
      authYaml = tokenAuth(tokenServer)
    }
    const { child, port, configPath, logs } = await spawnOnFreePort(
      dir,
      (p) => registryYaml(p, storageDir, opts, authYaml),
      opts.onOutput,
    )
    const url = `http://127.0.0.1:${port}`
    const registry: TestRegistry = {
      url,
      port,
      dir,
      storageDir,
      configPath,
      pid: child.pid as number,
      logs,
      stop: async () => {
        await stopChild(child)
        await tokenServer?.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
    if (credentials) registry.credentials = credentials
    if (tokenServer) registry.tokenServer = tokenServer
    return registry
  } catch (err) {
    await tokenServer?.stop()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** startRegistry + t.teardown(stop). */
export async function withRegistry(t: Teardownable, opts: RegistryOptions = {}): Promise<TestRegistry> {
  const registry = await startRegistry(opts)
  t.teardown(registry.stop)
  return registry
}

/**
 * A RegistryConfig (the service's schema, with its defaults spelled out) for a test registry.
 * The password goes through `passwordEnv`, so tests pass `env` to the client like the service does.
 */
export function registryConfig(
  registry: Pick<TestRegistry, 'url' | 'credentials' | 'tokenServer'> | { url: string },
  overrides: Partial<RegistryConfig> = {},
): RegistryConfig {
  const config: RegistryConfig = {
    name: 'test',
    url: registry.url,
    kind: 'distribution',
    tokenRealms: [],
    timeouts: { connectMs: 2000, headersMs: 10_000, bodyMs: 10_000 },
    maxConcurrency: 8,
    retries: 2,
    keepAliveHead: true,
  }
  if ('credentials' in registry && registry.credentials) {
    config.auth = { username: registry.credentials.username, passwordEnv: 'REGENT_TEST_REGISTRY_PASSWORD' }
  }
  if ('tokenServer' in registry && registry.tokenServer) config.tokenRealms = [registry.tokenServer.url]
  return { ...config, ...overrides }
}

/** The env a client built from `registryConfig(registry)` reads its password from. */
export function registryEnv(registry: Pick<TestRegistry, 'credentials'>): Record<string, string> {
  return registry.credentials ? { REGENT_TEST_REGISTRY_PASSWORD: registry.credentials.password } : {}
}

function registryYaml(port: number, storageDir: string, opts: RegistryOptions, authYaml: string): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    `    disabled: ${!opts.accessLog}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    `    enabled: ${opts.deleteEnabled ?? true}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    '    readonly:',
    `      enabled: ${opts.readOnly ?? false}`,
  ]
  if (opts.blobDescriptorCache) lines.push('  cache:', '    blobdescriptor: inmemory')
  lines.push('http:', `  addr: 127.0.0.1:${port}`, `  secret: ${randomBytes(16).toString('hex')}`)
  if (opts.notifications) lines.push(...notificationsYaml(opts.notifications))
  return `${lines.join('\n')}\n${authYaml}`
}

function notificationsYaml(endpoint: NotificationEndpoint): string[] {
  const lines = [
    'notifications:',
    '  endpoints:',
    '    - name: regent',
    `      url: ${JSON.stringify(endpoint.url)}`,
    `      timeout: ${endpoint.timeout ?? '1s'}`,
    `      threshold: ${endpoint.threshold ?? 3}`,
    `      backoff: ${endpoint.backoff ?? '1s'}`,
  ]
  const headers = Object.entries(endpoint.headers ?? {})
  if (headers.length > 0) {
    lines.push('      headers:')
    for (const [name, value] of headers) lines.push(`        ${name}: [${JSON.stringify(value)}]`)
  }
  if (endpoint.ignoredMediaTypes?.length) {
    lines.push('      ignoredmediatypes:')
    for (const type of endpoint.ignoredMediaTypes) lines.push(`        - ${JSON.stringify(type)}`)
  }
  return lines
}

async function htpasswdAuth(dir: string, credentials: BasicCredentials): Promise<string> {
  // distribution 2.8 accepts only bcrypt htpasswd lines; cost 4 keeps each request's check cheap.
  const file = path.join(dir, 'htpasswd')
  await writeFile(file, `${credentials.username}:${bcrypt.hashSync(credentials.password, 4)}\n`)
  return ['auth:', '  htpasswd:', '    realm: regent-test', `    path: ${JSON.stringify(file)}`, ''].join(
    '\n',
  )
}

function tokenAuth(server: TokenServer): string {
  return [
    'auth:',
    '  token:',
    `    realm: ${server.realm}`,
    `    service: ${server.service}`,
    `    issuer: ${server.issuer}`,
    `    rootcertbundle: ${JSON.stringify(server.certPath)}`,
    '',
  ].join('\n')
}

async function spawnOnFreePort(
  dir: string,
  yamlFor: (port: number) => string,
  onOutput?: (text: string) => void,
): Promise<{ child: ChildProcess; port: number; configPath: string; logs: () => string }> {
  // The port is found free and then handed to the registry; another process may take it in
  // between, so a start that dies with "address already in use" is retried on a new port.
  let lastError: Error | undefined
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const configPath = path.join(dir, 'config.yml')
    await writeFile(configPath, yamlFor(port))
    const lines: string[] = []
    const logs = () => lines.join('').split('\n').slice(-40).join('\n')
    const child = spawnTiedToParent(REGISTRY_BIN, ['serve', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    running.add(child)
    const keep = (chunk: Buffer) => {
      onOutput?.(chunk.toString('utf8'))
      lines.push(chunk.toString('utf8'))
      if (lines.length > 400) lines.splice(0, lines.length - 400)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.once('exit', () => running.delete(child))
    try {
      await waitUntilAnswering(`http://127.0.0.1:${port}/v2/`, child)
      return { child, port, configPath, logs }
    } catch (err) {
      await stopChild(child)
      lastError = new Error(`docker-registry did not start: ${(err as Error).message}\n${logs()}`)
      if (!logs().includes('address already in use')) break
    }
  }
  throw lastError ?? new Error('docker-registry did not start')
}

async function waitUntilAnswering(url: string, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${child.exitCode}`)
    try {
      const res = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 })
      await res.body.dump()
      return // any HTTP answer (401 included) means it is serving
    } catch {
      await sleep(50)
    }
  }
  throw new Error(`no answer at ${url} within ${timeoutMs} ms`)
}

export async function freePort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

// ---------------------------------------------------------------------------------------------
// Token server (distribution `docs/spec/auth/token.md`, JWT format of `registry/auth/token`)
// ---------------------------------------------------------------------------------------------

export interface TokenServerOptions {
  service?: string
  issuer?: string
  /** username → password accepted with Basic auth; requests without valid credentials get 401. */
  users?: Record<string, string>
  /** `expires_in` answered; 300 s unless set. */
  expiresIn?: number
  /** Which field carries the token: `token`, `access_token` or both (default). */
  field?: 'token' | 'access_token' | 'both'
}

export interface TokenRequestRecord {
  scopes: string[]
  service: string | undefined
  /** The Basic username given, or undefined for anonymous requests. */
  username: string | undefined
  status: number
  at: number
}

export interface TokenServer {
  /** Origin, for `tokenRealms`. */
  url: string
  realm: string
  service: string
  issuer: string
  certPath: string
  requests: TokenRequestRecord[]
  /** Requests that were answered with a token (optionally only those asking for `scope`). */
  issued(scope?: string): number
  /** Changes `expires_in` for the next tokens. */
  expiresIn: number
  /**
   * The next N tokens are signed with `exp` an hour in the past while `expires_in` still says
   * they are good: what a registry sees when a cached token outlived its real expiry (distribution
   * allows 60 s of leeway, so "just expired" would still pass).
   */
  issueExpired: number
  field: 'token' | 'access_token' | 'both'
  stop(): Promise<void>
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'regent-token-'))
  const certPath = path.join(dir, 'cert.pem')
  // distribution's rootcertbundle needs a certificate for the key that signs the tokens.
  const { key, cert } = await selfSignedCertificate('/CN=regent-test-token-issuer')
  await writeFile(certPath, cert)
  const certDer = new X509Certificate(cert).raw.toString('base64')
  const users = opts.users ?? {}

  const state = {
    service: opts.service ?? 'regent-test-registry',
    issuer: opts.issuer ?? 'regent-test-issuer',
    requests: [] as TokenRequestRecord[],
    expiresIn: opts.expiresIn ?? 300,
    issueExpired: 0,
    field: opts.field ?? 'both',
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.local')
    const username = basicUser(req.headers.authorization, users)
    const record: TokenRequestRecord = {
      scopes: url.searchParams
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean),
      service: url.searchParams.get('service') ?? undefined,
      username: username ?? undefined,
      status: 200,
      at: Date.now(),
    }
    state.requests.push(record)
    req.resume()
    const loginRequired = Object.keys(users).length > 0
    const refused = username === null || (loginRequired && username === undefined)
    if (url.pathname !== '/token' || refused) {
      record.status = url.pathname !== '/token' ? 404 : 401
      res.writeHead(record.status, { 'content-type': 'application/json' })
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
      return
    }
    const expired = state.issueExpired > 0
    if (expired) state.issueExpired--
    const now = Math.floor(Date.now() / 1000)
    const claims = {
      iss: state.issuer,
      sub: username ?? '',
      aud: state.service,
      exp: expired ? now - 3600 : now + state.expiresIn,
      nbf: expired ? now - 7200 : now - 10,
      iat: expired ? now - 7200 : now,
      jti: randomUUID(),
      access: record.scopes.map(accessOf).filter((a) => a !== undefined),
    }
    const token = signJwt({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }, claims, key)
    const body: Record<string, unknown> = { expires_in: state.expiresIn, issued_at: new Date().toISOString() }
    if (state.field !== 'access_token') body.token = token
    if (state.field !== 'token') body.access_token = token
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const url = `http://127.0.0.1:${port}`

  return {
    url,
    realm: `${url}/token`,
    get service() {
      return state.service
    },
    get issuer() {
      return state.issuer
    },
    certPath,
    requests: state.requests,
    issued: (scope?: string) =>
      state.requests.filter((r) => r.status === 200 && (scope === undefined || r.scopes.includes(scope)))
        .length,
    get expiresIn() {
      return state.expiresIn
    },
    set expiresIn(v: number) {
      state.expiresIn = v
    },
    get issueExpired() {
      return state.issueExpired
    },
    set issueExpired(v: number) {
      state.issueExpired = v
    },
    get field() {
      return state.field
    },
    set field(v: 'token' | 'access_token' | 'both') {
      state.field = v
    },
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** undefined: no credentials sent; null: wrong credentials; else the username. */
function basicUser(
  authorization: string | undefined,
  users: Record<string, string>,
): string | null | undefined {
  if (!authorization) return undefined
  const match = /^Basic\s+(.+)$/i.exec(authorization)
  if (!match?.[1]) return null
  const [user, ...rest] = Buffer.from(match[1], 'base64').toString('utf8').split(':')
  if (user === undefined || users[user] === undefined || users[user] !== rest.join(':')) return null
  return user
}

/** `repository:foo/bar:pull,push` → an access claim granting what was asked. */
function accessOf(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const parts = scope.split(':')
  if (parts.length < 3) return undefined
  const type = parts[0] as string
  const actions = (parts.at(-1) as string).split(',').filter(Boolean)
  return { type, name: parts.slice(1, -1).join(':'), actions }
}

function signJwt(header: object, claims: object, keyPem: string): string {
  const encode = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const signingInput = `${encode(header)}.${encode(claims)}`
  const signature = sign('sha256', Buffer.from(signingInput), keyPem).toString('base64url')
  return `${signingInput}.${signature}`
}

// ---------------------------------------------------------------------------------------------
// Looking into a registry's storage (distribution's filesystem layout), for what its API cannot
// list: the manifests a repository still holds, tagged or not.
// ---------------------------------------------------------------------------------------------

/** Digests of every manifest revision the repository holds (tagged or not). */
export async function storedManifests(registry: Pick<TestRegistry, 'storageDir'>, repository: string) {
  const { readdir } = await import('node:fs/promises')
  const dir = path.join(
    registry.storageDir,
    'docker/registry/v2/repositories',
    repository,
    '_manifests/revisions/sha256',
  )
  const hexes = await readdir(dir).catch(() => [] as string[])
  const { access } = await import('node:fs/promises')
  const present: string[] = []
  for (const hex of hexes) {
    if (
      await access(path.join(dir, hex, 'link')).then(
        () => true,
        () => false,
      )
    )
      present.push(`sha256:${hex}`)
  }
  return present.sort()
}

/** A blob's bytes straight from storage. */
export async function storedBlob(
  registry: Pick<TestRegistry, 'storageDir'>,
  digest: string,
): Promise<Buffer> {
  const hex = digest.replace(/^sha256:/, '')
  return readFile(
    path.join(registry.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'),
  )
}

/**
 * The untag placeholders Regent pushed that are still stored as manifests in the repository (their
 * config carries the `regent.untag` label): after every untag has finished there must be none.
 */
export async function leftoverPlaceholders(registry: Pick<TestRegistry, 'storageDir'>, repository: string) {
  const left: string[] = []
  for (const digest of await storedManifests(registry, repository)) {
    const manifest = JSON.parse((await storedBlob(registry, digest)).toString('utf8'))
    if (!manifest.config?.digest) continue
    const config = JSON.parse((await storedBlob(registry, manifest.config.digest)).toString('utf8'))
    if (config.config?.Labels?.['regent.untag'] !== undefined) left.push(digest)
  }
  return left
}
