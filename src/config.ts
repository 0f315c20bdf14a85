import { readFileSync } from 'node:fs'
import path from 'node:path'
import { type Static, Type } from 'typebox'
import { Value } from 'typebox/value'
import { parse as parseYaml } from 'yaml'
import { AuthConfigSchema } from './auth/config-schema.js'
import { ChatopsConfigSchema } from './chatops/config-schema.js'
import { GovernanceConfigSchema } from './governance/config-schema.js'
import { HousekeepingConfigSchema } from './housekeeping/config-schema.js'
import { JobsConfigSchema } from './jobs/config-schema.js'
import { NotificationsConfigSchema } from './notifications/config-schema.js'
import { RegistryConfigSchema } from './registries/config-schema.js'
import { RetentionConfigSchema } from './retention/config-schema.js'
import { UiConfigSchema } from './ui/config-schema.js'
import { UsageConfigSchema } from './usage/config-schema.js'

/**
 * The one reader of process.env and of the config file. Everything else receives a `Config`.
 * Environment variables win over the file, so a deployment can override one value without
 * templating the whole file.
 */

const LogLevelSchema = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
)

const DatabaseSchema = Type.Object(
  {
    poolMax: Type.Integer({
      minimum: 1,
      maximum: 200,
      default: 10,
      description:
        'Most connections per process. Deletions hold at most all but a quarter of them (at least two kept free) as repository write sessions, one per repository being written, so requests and the job queue always find one',
    }),
    connectionTimeoutMs: Type.Integer({
      minimum: 100,
      default: 5000,
      description:
        'How long an operation waits for a free connection (or a new one to open) before it fails; raise it rather than `poolMax` when short bursts queue up',
    }),
    idleTimeoutMs: Type.Integer({
      minimum: 1000,
      default: 30000,
      description:
        'A connection idle this long is closed, giving it back to the database; busy pools keep theirs',
    }),
    statementTimeoutMs: Type.Integer({
      minimum: 0,
      default: 30000,
      description:
        'Server-side `statement_timeout` of every statement, which cancels one running longer; `0` disables it',
    }),
    readyTimeoutMs: Type.Integer({
      minimum: 100,
      default: 2000,
      description: 'How long /readyz waits for the database, on a connection of its own',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'The PostgreSQL connection pool, one per process',
  },
)

const EmbeddedPostgresSchema = Type.Object(
  {
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 0,
      description: 'Its loopback port; `0` picks a free port on each start',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The embedded PostgreSQL, started on loopback when `databaseUrl` is unset (development, trials)',
  },
)

const BrowseSchema = Type.Object(
  {
    tagTtlMs: Type.Integer({
      minimum: 0,
      default: 5000,
      description: 'How long a tag → digest answer is reused',
    }),
    cacheMemoryBytes: Type.Integer({
      minimum: 0,
      default: 64 * 1024 * 1024,
      description:
        'Bytes of manifests and image configs each process keeps in memory, least recently used out first (64 MiB); Postgres keeps as many across restarts, trimmed by housekeeping',
    }),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 16,
      description:
        'Registry calls one browse request makes at once (tag HEADs, manifests, configs); retention runs use it within one repository too',
    }),
    siblingScanLimit: Type.Integer({
      minimum: 1,
      default: 10000,
      description:
        'Tags resolved per repository to find which tags share a digest (`sharedWith`); in a repository with more, a tag page says `sharedWithComplete: false`. Each tag costs one HEAD',
    }),
    maxConfigBytes: Type.Integer({
      minimum: 1024,
      default: 4 * 1024 * 1024,
      description:
        'Largest image config read, in bytes (4 MiB); a larger one is refused with `REGENT_REGISTRY_RESPONSE_TOO_LARGE`',
    }),
    probeTimeoutMs: Type.Integer({
      minimum: 10,
      default: 2000,
      description:
        "How long `/readyz` and `GET /v1/registries` wait for a registry's first capability probe; a registry still unprobed then shows as `unknown`",
    }),
  },
  { additionalProperties: false, default: {}, description: 'Browsing registries and its caches' },
)

const GraphqlSchema = Type.Object(
  {
    graphiql: Type.Boolean({
      default: false,
      description: 'Serve the GraphiQL page at `/graphiql`; the queries it sends still need a token',
    }),
    maxDepth: Type.Integer({
      minimum: 2,
      maximum: 50,
      default: 10,
      description: 'Deepest query accepted; a deeper one is refused with 400 `REGENT_GRAPHQL_INVALID`',
    }),
    maxCost: Type.Integer({
      minimum: 1,
      default: 25000,
      description: 'Most field resolutions one query may ask for, counting every page as full',
    }),
    maxAliases: Type.Integer({
      minimum: 0,
      default: 30,
      description: 'Most aliases in one query; more are refused with 400 `REGENT_GRAPHQL_TOO_COMPLEX`',
    }),
    maxRootFields: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'Most root fields in one query; more are refused with 400 `REGENT_GRAPHQL_TOO_COMPLEX`',
    }),
    timeoutMs: Type.Integer({
      minimum: 100,
      default: 30000,
      description:
        'A query running longer is aborted with `REGENT_GRAPHQL_TIMEOUT`, and the registry calls it started stop',
    }),
    introspection: Type.Optional(
      Type.Boolean({
        description:
          'Answer `__schema` and `__type`; default: on only in development (embedded database, generated JWT secret)',
      }),
    ),
  },
  { additionalProperties: false, default: {}, description: 'The GraphQL endpoint at `/graphql`' },
)

const DeletionsSchema = Type.Object(
  {
    repositoryConcurrency: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 8,
      description: 'Repositories of one request executed at once; within a repository, one DELETE at a time',
    }),
    waveSize: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 100,
      description:
        'Items of one repository verified together just before their DELETEs; smaller waves narrow the window in which a change goes unseen, at one tag listing and one HEAD per tag per wave. A request makes at most four waves per repository: past four times this many items there, a wave is a quarter of them',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 50,
      default: 5,
      description: 'Attempts of an execution job before the request fails',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Execution of approved deletions' },
)

const PublicRoutesSchema = Type.Object(
  {
    rateLimit: Type.Object(
      {
        max: Type.Integer({
          minimum: 1,
          default: 300,
          description: 'Requests per client address and window',
        }),
        windowMs: Type.Integer({
          minimum: 1000,
          default: 60000,
          description: 'The window `max` is counted over',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Requests per client address (`trustProxy`-aware), counted in memory per replica; over the limit: 429 `REGENT_RATE_LIMITED` with `Retry-After`',
      },
    ),
    refusalSummaryMs: Type.Integer({
      minimum: 1000,
      default: 300000,
      description: 'Refused requests are audited as one summary per source per this window',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The routes reachable without a token: the Slack request URLs and the registry events endpoint',
  },
)

export const ConfigSchema = Type.Object(
  {
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8080,
      description: 'HTTP port of the REST API, GraphQL, the console and the probes; `0` picks a free port',
    }),
    host: Type.String({
      minLength: 1,
      default: '0.0.0.0',
      description:
        'Address to listen on; `0.0.0.0` (every interface) lets probes reach it in a container, `127.0.0.1` keeps Regent to this machine',
    }),
    databaseUrl: Type.Optional(
      Type.String({
        pattern: '^postgres(ql)?://',
        description:
          'Your PostgreSQL (15 or newer), e.g. `postgres://user:pass@host:5432/db`; unset, Regent starts the embedded PostgreSQL under `dataDir`',
      }),
    ),
    dataDir: Type.String({
      minLength: 1,
      default: './.regent',
      description:
        'Folder of the embedded database (`pg/`) and the generated development secrets, resolved against the working directory at start; with `databaseUrl` and a configured key nothing is written there',
    }),
    logLevel: Type.Union([LogLevelSchema], {
      default: 'info',
      description: 'Lowest level written to the log (JSON lines); `debug` or `trace` when troubleshooting',
    }),
    shutdownGraceMs: Type.Integer({
      minimum: 100,
      maximum: 120000,
      default: 10000,
      description:
        'On SIGTERM or SIGINT, how long draining requests, stopping the worker and the embedded database may take before the process exits anyway (exit 1); keep it above `jobs.shutdownGraceMs`',
    }),
    trustProxy: Type.Boolean({
      default: false,
      description:
        "Trust `X-Forwarded-For` from a proxy in front, so the audit log and the rate limits see the client's address; leave it off when clients connect directly, or they could claim any address",
    }),
    auth: AuthConfigSchema,
    database: DatabaseSchema,
    embeddedPostgres: EmbeddedPostgresSchema,
    registries: Type.Array(RegistryConfigSchema, {
      default: [],
      description:
        'The registries Regent fronts; without any, Regent runs but has nothing to browse or delete (`REGENT_REGISTRY_URL` adds one)',
    }),
    browse: BrowseSchema,
    graphql: GraphqlSchema,
    publicRoutes: PublicRoutesSchema,
    governance: GovernanceConfigSchema,
    worker: Type.Boolean({
      default: true,
      description:
        'Run the job worker in this process; `off` (or `false`) makes an API-only replica that queues jobs for others',
    }),
    jobs: JobsConfigSchema,
    deletions: DeletionsSchema,
    retention: RetentionConfigSchema,
    chatops: ChatopsConfigSchema,
    notifications: NotificationsConfigSchema,
    ui: UiConfigSchema,
    usage: UsageConfigSchema,
    housekeeping: HousekeepingConfigSchema,
  },
  { additionalProperties: false },
)

export type Config = Static<typeof ConfigSchema>

/**
 * Environment variables and the config key (a dotted path) each one sets. Listed with their keys in
 * docs/configuration.md, which `npm run docs` generates from this and the schema.
 */
export const ENV_VARS = {
  PORT: 'port',
  HOST: 'host',
  DATABASE_URL: 'databaseUrl',
  REGENT_DATA_DIR: 'dataDir',
  LOG_LEVEL: 'logLevel',
  REGENT_SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
  REGENT_TRUST_PROXY: 'trustProxy',
  REGENT_JWT_SECRET: 'auth.jwtSecret',
  REGENT_WORKER: 'worker',
  REGENT_SLACK_SIGNING_SECRET: 'chatops.slack.signingSecret',
  REGENT_SLACK_BOT_TOKEN: 'chatops.slack.botToken',
  // Set by Kubernetes in every pod: the API server an in-cluster usage source talks to.
  KUBERNETES_SERVICE_HOST: 'usage.inCluster.serviceHost',
  KUBERNETES_SERVICE_PORT: 'usage.inCluster.servicePort',
} as const satisfies Record<string, string>

/** Read by loadConfig itself rather than mapped onto a key. */
export const CONFIG_FILE_ENV = 'REGENT_CONFIG'

/**
 * One registry without a config file, for trying Regent against a registry that already runs:
 * `REGENT_REGISTRY_URL` adds it to `registries` under `REGENT_REGISTRY_NAME` (default `local`).
 */
export const QUICK_REGISTRY_ENV = { url: 'REGENT_REGISTRY_URL', name: 'REGENT_REGISTRY_NAME' } as const
export const QUICK_REGISTRY_DEFAULT_NAME = 'local'

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

/**
 * Builds the config from an environment and the optional YAML file it names. Throws ConfigError
 * listing every problem, one line each, naming the key (and the variable or file it came from).
 */
export function loadConfig(env: Env = process.env, overrides: Record<string, unknown> = {}): Config {
  const problems: string[] = []
  const sources = new Map<string, string>()
  let fromFile: Record<string, unknown> = {}

  const file = env[CONFIG_FILE_ENV]
  if (file) {
    try {
      const parsed = parseYaml(readFileSync(file, 'utf8'))
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) {
          problems.push(`${CONFIG_FILE_ENV} (${file}): the file must hold a mapping of keys`)
        } else {
          fromFile = parsed as Record<string, unknown>
          for (const key of Object.keys(fromFile)) sources.set(key, file)
        }
      }
    } catch (err) {
      problems.push(`${CONFIG_FILE_ENV} (${file}): ${(err as Error).message.split('\n')[0]}`)
    }
  }

  let candidate: Record<string, unknown> = { ...fromFile, ...overrides }
  for (const [name, key] of Object.entries(ENV_VARS)) {
    const value = env[name]
    if (value === undefined || value === '') continue
    candidate = setPath(candidate, key, value)
    sources.set(key, `env ${name}`)
  }

  candidate = addQuickRegistry(candidate, env, sources, problems)

  // REGENT_WORKER=on|off reads better in a deployment than true/false; both work.
  if (typeof candidate.worker === 'string')
    candidate.worker =
      ({ on: 'true', off: 'false' } as Record<string, string>)[candidate.worker] ?? candidate.worker
  let checked: unknown = Value.Default(ConfigSchema, candidate)
  // Env values are strings: convert them to the schema's types ("8080" → 8080, "true" → true).
  checked = Value.Convert(ConfigSchema, checked)

  if (problems.length === 0 && !Value.Check(ConfigSchema, checked)) {
    for (const err of Value.Errors(ConfigSchema, checked)) {
      if (err.keyword === 'boolean') continue // reported again, better, as additionalProperties
      problems.push(describeProblem(err, sources))
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)

  const config = checked as Config
  config.dataDir = path.resolve(config.dataDir)
  return config
}

/**
 * Appends the registry named by REGENT_REGISTRY_URL to those of the file. A registry of the same
 * name in the file is a conflict rather than an override: silently replacing a configured
 * registry (its credentials, GC hooks) with a bare URL would surprise whoever wrote the file.
 */
function addQuickRegistry(
  candidate: Record<string, unknown>,
  env: Env,
  sources: Map<string, string>,
  problems: string[],
): Record<string, unknown> {
  const url = env[QUICK_REGISTRY_ENV.url]
  const name = env[QUICK_REGISTRY_ENV.name]
  if (!url) {
    if (name) problems.push(`${QUICK_REGISTRY_ENV.name}: only takes effect with ${QUICK_REGISTRY_ENV.url}`)
    return candidate
  }
  const registryName = name || QUICK_REGISTRY_DEFAULT_NAME
  const existing = Array.isArray(candidate.registries) ? (candidate.registries as unknown[]) : []
  if (existing.some((r) => (r as { name?: unknown } | null)?.name === registryName)) {
    problems.push(
      `${QUICK_REGISTRY_ENV.url}: a registry named ${registryName} is already configured; set ${QUICK_REGISTRY_ENV.name} to another name`,
    )
    return candidate
  }
  if (existing.length === 0) {
    sources.set('registries.url', `env ${QUICK_REGISTRY_ENV.url}`)
    sources.set('registries.name', name ? `env ${QUICK_REGISTRY_ENV.name}` : `env ${QUICK_REGISTRY_ENV.url}`)
  }
  return { ...candidate, registries: [...existing, { name: registryName, url }] }
}

/** Returns a copy of `target` with the dotted `key` set, copying each object on the way. */
function setPath(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = key.split('.')
  if (!head) return target
  if (rest.length === 0) return { ...target, [head]: value }
  const inner = target[head]
  const child =
    inner && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : {}
  return { ...target, [head]: setPath(child, rest.join('.'), value) }
}

interface SchemaProblem {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  message: string
}

function describeProblem(err: SchemaProblem, sources: Map<string, string>): string {
  const segments = err.instancePath.split('/').filter(Boolean)
  let key = segments.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')
  let message = err.message
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params.additionalProperties as string[] | undefined) ?? []
    key = extra.map((name) => (key ? `${key}.${name}` : name)).join(', ')
    message = 'unknown key'
  } else if (err.keyword === 'required') {
    const missing = (err.params.requiredProperties as string[] | undefined) ?? []
    key = missing.map((name) => (key ? `${key}.${name}` : name)).join(', ')
    message = 'required value is missing'
  }
  const dotted = segments.filter((s) => !/^\d+$/.test(s)).join('.')
  const source = sources.get(dotted) ?? sources.get(segments[0] ?? key.split(/[.[,]/)[0] ?? '')
  return `${key || '(root)'}: ${message}${source ? ` (from ${source})` : ''}`
}
