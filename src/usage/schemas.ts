import { Type } from 'typebox'

/** REST shapes of usage: references, verdicts and sources. */

const Digest = Type.String({ pattern: '^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$' })

export const UsageQuerySchema = Type.Object(
  {
    registry: Type.String({ minLength: 1, maxLength: 63 }),
    repository: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    digest: Type.Optional(Digest),
    tag: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$' })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
)

export const UsageReferenceSchema = Type.Object(
  {
    id: Type.String(),
    source: Type.String(),
    registry: Type.String(),
    repository: Type.String(),
    digest: Type.Union([Type.String(), Type.Null()], { description: 'The digest run or named' }),
    tag: Type.Union([Type.String(), Type.Null()], {
      description: 'The tag named, when the reference pulls by tag',
    }),
    cluster: Type.String(),
    namespace: Type.String(),
    kind: Type.String({
      description: 'Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, or an inventory kind',
    }),
    name: Type.String(),
    container: Type.String(),
    owner: Type.Union([Type.Object({ kind: Type.String(), name: Type.String() }), Type.Null()], {
      description: 'The workload a ReplicaSet or Job belongs to',
    }),
    running: Type.Boolean({ description: 'Pods run this digest (their status imageID)' }),
    pods: Type.Integer({ description: 'Pods counted here: a workload’s pods are one reference' }),
    firstSeenAt: Type.String({ format: 'date-time' }),
    lastSeenAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'UsageReference' },
)

export const UsageLocationSchema = Type.Object({
  source: Type.String(),
  cluster: Type.String(),
  namespace: Type.String(),
  kind: Type.String(),
  name: Type.String(),
  container: Type.String(),
  by: Type.Union([Type.Literal('running'), Type.Literal('digest'), Type.Literal('tag')]),
  reference: Type.String({ description: 'The digest or tag named' }),
  pods: Type.Integer(),
  firstSeenAt: Type.String({ format: 'date-time' }),
})

export const UsageVerdictSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('in-use'), Type.Literal('unused'), Type.Literal('unknown')]),
    where: Type.Array(UsageLocationSchema),
    staleSources: Type.Array(Type.String()),
    lastPulledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    tags: Type.Array(Type.String(), {
      description: 'The tags pointing at the digest now, which count when named',
    }),
    summary: Type.String(),
  },
  { $id: 'UsageVerdict' },
)

export const UsagePageSchema = Type.Object({
  items: Type.Array(Type.Ref('UsageReference')),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
  verdict: Type.Union([Type.Ref('UsageVerdict'), Type.Null()], {
    description: 'With repository and digest: whether the digest is in use, and why',
  }),
})

export const UsageSourceViewSchema = Type.Object(
  {
    name: Type.String(),
    kind: Type.String(),
    registries: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'null: every registry' }),
    refreshIntervalMs: Type.Integer(),
    staleAfterMs: Type.Integer(),
    stale: Type.Boolean({
      description: 'No successful sync within staleAfterMs: its registries’ usage is unknown',
    }),
    lastSyncStartedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastSyncFinishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastSyncDurationMs: Type.Union([Type.Integer(), Type.Null()]),
    lastOutcome: Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Null()]),
    lastSuccessAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When the last successful sync started: its data describes that moment',
    }),
    lastError: Type.Union([Type.String(), Type.Null()]),
    lastErrorAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    counts: Type.Record(Type.String(), Type.Number(), {
      description: 'Of the last successful sync: pods, workloads, references, unmatched, pages, restarts…',
    }),
  },
  { $id: 'UsageSource' },
)

export const SourceParamsSchema = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) })
