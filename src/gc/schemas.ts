import { type Static, Type } from 'typebox'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()])

export const GcRequestSchema = Type.Object(
  {
    dryRun: Type.Boolean({
      default: false,
      description: 'Only report what a run would remove; nothing on disk changes',
    }),
    deleteUntagged: Type.Boolean({
      default: false,
      description:
        'Also delete manifests no tag points at (refused when a tagged index still lists one: distribution #3004)',
    }),
  },
  { additionalProperties: false },
)

export const GcStepSchema = Type.Object({
  name: Type.String({ description: '`before`, `wait`, `dry-run`, `gc`, `after` or `verify`' }),
  attempt: Type.Integer(),
  startedAt: Type.String({ format: 'date-time' }),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
  ok: Nullable(Type.Boolean()),
  output: Type.String({ description: 'The last lines of its output, or what it found' }),
})

export const GcRunSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    registry: Type.String(),
    trigger: Type.Union([Type.Literal('manual'), Type.Literal('coalesced'), Type.Literal('schedule')]),
    requestedBy: Type.Object({ subject: Type.String(), onBehalfOf: Nullable(Type.String()) }),
    dryRun: Type.Boolean(),
    deleteUntagged: Type.Boolean(),
    state: Type.Union([
      Type.Literal('queued'),
      Type.Literal('running'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
      Type.Literal('cancelled'),
    ]),
    failedStep: Nullable(Type.String({ description: 'The step that failed, when the run failed' })),
    error: Nullable(Type.String()),
    steps: Type.Array(GcStepSchema),
    eligible: Type.Object(
      {
        markedBlobs: Nullable(Type.Integer()),
        blobs: Nullable(Type.Integer()),
        manifests: Nullable(Type.Integer()),
        bytes: Nullable(Type.Integer({ description: 'Bytes of the eligible blobs (needs storagePath)' })),
        share: Nullable(Type.Number({ description: 'eligible / (marked + eligible) blobs' })),
      },
      { description: 'What the dry run (or, without one, the GC itself) found removable' },
    ),
    collected: Type.Object({ blobs: Nullable(Type.Integer()), manifests: Nullable(Type.Integer()) }),
    bytesBefore: Nullable(Type.Integer({ description: 'The storage folder before the GC (storagePath)' })),
    bytesAfter: Nullable(Type.Integer()),
    bytesFreed: Nullable(
      Type.Integer({ description: 'before − after, else what the executor said it freed' }),
    ),
    log: Type.Optional(Type.String({ description: 'The last 64 KiB of output (single-run answers only)' })),
    jobId: Nullable(Type.String({ format: 'uuid' })),
    notBefore: Type.String({ format: 'date-time', description: 'A queued run waits until then' }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Nullable(Type.String({ format: 'date-time' })),
    finishedAt: Nullable(Type.String({ format: 'date-time' })),
    summary: Type.String({ description: 'One line a chat bot can post as it is' }),
  },
  { $id: 'GcRun', title: 'GcRun' },
)

export type GcRunView = Static<typeof GcRunSchema>

export const RegistryParamsSchema = Type.Object({ registry: Type.String({ minLength: 1, maxLength: 63 }) })
export const GcRunParamsSchema = Type.Object({ id: Type.String({ format: 'uuid' }) })

export const GcRunListQuerySchema = Type.Object({
  registry: Type.Optional(Type.String()),
  state: Type.Optional(
    Type.Union([
      Type.Literal('queued'),
      Type.Literal('running'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
      Type.Literal('cancelled'),
    ]),
  ),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 2048 })),
})
