import { type Static, Type } from 'typebox'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()])

export const JobParamsSchema = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The job id, as returned when the job was queued' }),
})

export const JobViewSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    kind: Type.String(),
    state: Type.Union([
      Type.Literal('queued'),
      Type.Literal('running'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
      Type.Literal('cancelled'),
    ]),
    registry: Nullable(Type.String()),
    attempts: Type.Integer({ description: 'Attempts started so far' }),
    maxAttempts: Type.Integer(),
    progress: Type.Unknown({ description: 'The latest progress report of the handler, if any' }),
    lastError: Nullable(Type.String({ description: 'Why the latest attempt failed' })),
    runAt: Type.String({ format: 'date-time', description: 'When a queued job is (or was) due' }),
    leaseExpiresAt: Nullable(Type.String({ format: 'date-time', description: 'Set while running' })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    finishedAt: Nullable(Type.String({ format: 'date-time' })),
  },
  { $id: 'Job', title: 'Job' },
)

export type JobView = Static<typeof JobViewSchema>
