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
      description: 'Most connections per process',
    }),
    connectionTimeoutMs: Type.Integer({ minimum: 100, default: 5000 }),
    idleTimeoutMs: Type.Integer({ minimum: 1000, default: 30000 }),
    statementTimeoutMs: Type.Integer({ minimum: 0, default: 30000, description: '0 disables it' }),
    readyTimeoutMs: Type.Integer({
      minimum: 100,
      default: 2000,
      description: 'How long /readyz waits for the database, on a connection of its own',
    }),
  },
  { additionalProperties: false, default: {} },
)

const EmbeddedPostgresSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: '0 picks a free port' }),
  },
  { additionalProperties: false, default: {} },
)

const BrowseSchema = Type.Object(
  {
    tagTtlMs: Type.Integer({
      minimum: 0,
      default: 5000,
      description: 'How long a tag → digest answer is reused',
    }),
    cacheMemoryBytes: Type.Integer({ minimum: 0, default: 64 * 1024 * 1024 }),
    concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 16 }),
    siblingScanLimit: Type.Integer({ minimum: 1, default: 10000 }),
    maxConfigBytes: Type.Integer({ minimum: 1024, default: 4 * 1024 * 1024 }),
    probeTimeoutMs: Type.Integer({ minimum: 10, default: 2000 }),
  },
  { additionalProperties: false, default: {} },
)

const GraphqlSchema = Type.Object(
  {
    graphiql: Type.Boolean({ default: false }),
    maxDepth: Type.Integer({ minimum: 2, maximum: 50, default: 10 }),
    maxCost: Type.Integer({
      minimum: 1,
      default: 25000,
      description: 'Most field resolutions one query may ask for, counting every page as full',
    }),
    maxAliases: Type.Integer({ minimum: 0, default: 30 }),
    maxRootFields: Type.Integer({ minimum: 1, default: 10 }),
    timeoutMs: Type.Integer({
      minimum: 100,
      default: 30000,
      description: 'Per request; its registry calls stop',
    }),
    introspection: Type.Optional(
      Type.Boolean({
        description: 'Default: on only for development (embedded database, generated JWT secret)',
      }),
    ),
  },
  { additionalProperties: false, default: {} },
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
        'Items of one repository verified together just before their DELETEs; smaller waves narrow the window in which a change goes unseen, at one tag listing and one HEAD per tag per wave',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 50,
      default: 5,
      description: 'Attempts of an execution job',
    }),
  },
  { additionalProperties: false, default: {} },
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
        windowMs: Type.Integer({ minimum: 1000, default: 60000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    refusalSummaryMs: Type.Integer({
      minimum: 1000,
      default: 300000,
      description: 'Refused requests are audited as one summary per source per this window',
    }),
  },
  { additionalProperties: false, default: {} },
)

export const ConfigSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    host: Type.String({ minLength: 1, default: '0.0.0.0' }),
    databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    dataDir: Type.String({ minLength: 1, default: './.regent' }),
    logLevel: Type.Union([LogLevelSchema], { default: 'info' }),
    shutdownGraceMs: Type.Integer({ minimum: 100, maximum: 120000, default: 10000 }),
    trustProxy: Type.Boolean({ default: false }),
    auth: AuthConfigSchema,
    database: DatabaseSchema,
    embeddedPostgres: EmbeddedPostgresSchema,
    registries: Type.Array(RegistryConfigSchema, { default: [] }),
    browse: BrowseSchema,
    graphql: GraphqlSchema,
    publicRoutes: PublicRoutesSchema,
    governance: GovernanceConfigSchema,
    worker: Type.Boolean({ default: true, description: 'Run the job worker in this process' }),
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

/** Environment variables and the config key (a dotted path) each one sets. Documented in README.md. */
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
