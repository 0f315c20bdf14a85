import { type Static, Type } from 'typebox'

/**
 * The `usage` section: where Regent learns what is deployed. Each source is synced on its own
 * interval into Postgres; a source that has not synced within its staleness limit makes usage
 * `unknown` for the registries it covers, which counts as in use unless configured otherwise.
 */

const DURATION = '^\\d{1,6}(ms|s|m|h|d)$'
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Milliseconds, or a duration written `30s`, `5m`, `2h`, `1d`. */
const Interval = (minimum: number, fallback: number, description: string) =>
  Type.Union([Type.Integer({ minimum }), Type.String({ pattern: DURATION })], {
    default: fallback,
    description: `${description}: milliseconds, or a duration such as \`30s\`, \`5m\`, \`2h\``,
  })

/** `5m` → 300000; a number is already milliseconds. */
export function intervalMs(value: number | string): number {
  if (typeof value === 'number') return value
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value)
  if (!match) throw new Error(`not a duration: ${value}`)
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

export const KubernetesSourceSchema = Type.Object(
  {
    cluster: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        description: 'Cluster name shown in verdicts (default: the source name)',
      }),
    ),
    kubeconfig: Type.Optional(
      Type.String({ minLength: 1, description: 'Path of a kubeconfig file; without it: in-cluster' }),
    ),
    context: Type.Optional(
      Type.String({ minLength: 1, description: 'Context in the kubeconfig (default: its current-context)' }),
    ),
    namespaces: Type.Array(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }), {
      default: [],
      description: 'Read only these namespaces (a Role per namespace suffices); empty: the whole cluster',
    }),
    pageSize: Type.Integer({ minimum: 1, maximum: 5000, default: 500, description: 'List `limit` per page' }),
    timeoutMs: Type.Integer({
      minimum: 100,
      default: 30000,
      description: 'Connect, header and body timeout',
    }),
  },
  {
    additionalProperties: false,
    description:
      'For `kubernetes`: how to reach the cluster; every key is optional, and without any Regent uses its in-cluster credentials (`usage.inCluster`)',
  },
)

export const InventorySourceSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://', description: 'Where the inventory document is fetched' }),
    tokenEnv: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description: 'Environment variable holding a bearer token sent with the request',
      }),
    ),
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA to trust for the URL' })),
    timeoutMs: Type.Integer({
      minimum: 100,
      default: 30000,
      description: 'Connect, header and body timeout of the fetch',
    }),
    maxBytes: Type.Integer({
      minimum: 1024,
      default: 64 * 1024 * 1024,
      description: 'Largest document read',
    }),
  },
  {
    additionalProperties: false,
    description: 'For `inventory`: where the document is (required for that kind)',
  },
)

export const UsageSourceSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
      description: 'Unique name; verdicts, metrics and `/v1/usage/sources` name the source by it',
    }),
    kind: Type.Union([Type.Literal('kubernetes'), Type.Literal('inventory')], {
      description:
        "`kubernetes` (what a cluster's pods and workloads run or name) or `inventory` (a JSON document of images in use, fetched over HTTP)",
    }),
    refreshIntervalMs: Interval(1000, 300_000, 'How often the source is synced'),
    staleAfterMs: Interval(
      1000,
      1_800_000,
      'How old its last successful sync may be before usage is unknown',
    ),
    registries: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Registries whose usage it knows (default: all); a stale source makes only these unknown',
      }),
    ),
    kubernetes: Type.Optional(KubernetesSourceSchema),
    inventory: Type.Optional(InventorySourceSchema),
  },
  { additionalProperties: false },
)

export const InClusterSchema = Type.Object(
  {
    serviceHost: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "The API server's host, from `KUBERNETES_SERVICE_HOST`, which Kubernetes sets in every pod; unset outside a cluster",
      }),
    ),
    servicePort: Type.Integer({
      minimum: 1,
      maximum: 65535,
      default: 443,
      description:
        "The API server's port, from `KUBERNETES_SERVICE_PORT`, which Kubernetes sets in every pod",
    }),
    tokenFile: Type.String({
      minLength: 1,
      default: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      description:
        'The service account token, read at the start of every sync so a rotated token is picked up; the default is where Kubernetes mounts it',
    }),
    caFile: Type.String({
      minLength: 1,
      default: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      description:
        "The CA the API server's certificate is checked against; the default is where Kubernetes mounts it",
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'In-cluster credentials of `kubernetes` sources without a kubeconfig',
  },
)

export const UsageConfigSchema = Type.Object(
  {
    sources: Type.Array(UsageSourceSchema, {
      default: [],
      description: 'Where usage comes from; none by default, so every digest is `unused`',
    }),
    unknownCountsAsInUse: Type.Boolean({
      default: true,
      description: 'A digest whose usage is unknown (a stale source) counts as in use: fail closed',
    }),
    inCluster: InClusterSchema,
  },
  {
    additionalProperties: false,
    default: {},
    description: 'In-use awareness: where Regent learns which images are deployed',
  },
)

export type UsageConfig = Static<typeof UsageConfigSchema>
export type UsageSourceConfig = Static<typeof UsageSourceSchema>
export type KubernetesSourceConfig = Static<typeof KubernetesSourceSchema>
export type InventorySourceConfig = Static<typeof InventorySourceSchema>
export type InClusterConfig = Static<typeof InClusterSchema>

/** Problems the schema cannot express: the kind's own section, unique names, known registries. */
export function usageConfigProblems(config: UsageConfig, registryNames: string[]): string[] {
  const problems: string[] = []
  const seen = new Set<string>()
  config.sources.forEach((source, i) => {
    const at = `usage.sources[${i}]`
    if (seen.has(source.name)) problems.push(`${at}.name: ${source.name} is used twice`)
    seen.add(source.name)
    if (source.kind === 'inventory' && !source.inventory)
      problems.push(`${at}.inventory: required for kind inventory`)
    if (source.kind === 'kubernetes' && source.inventory)
      problems.push(`${at}.inventory: only for kind inventory`)
    if (source.kind === 'inventory' && source.kubernetes)
      problems.push(`${at}.kubernetes: only for kind kubernetes`)
    for (const name of source.registries ?? [])
      if (!registryNames.includes(name))
        problems.push(`${at}.registries: ${name} is not a configured registry`)
    if (intervalMs(source.staleAfterMs) < intervalMs(source.refreshIntervalMs))
      problems.push(
        `${at}.staleAfterMs: must be at least refreshIntervalMs, or every source is stale between syncs`,
      )
  })
  return problems
}
