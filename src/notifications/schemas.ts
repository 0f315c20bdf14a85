import { type Static, Type } from 'typebox'
import { NOTIFICATION_TYPES } from './events.js'

const DeliveryStateSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('delivered'),
  Type.Literal('failed'),
])

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()])

export const DeliverySchema = Type.Object(
  {
    id: Type.String({ format: 'uuid', description: 'Also the `x-regent-delivery` header and the event id' }),
    webhook: Type.String({ description: 'notifications.webhooks[].name' }),
    type: Type.String({ description: 'The event type, e.g. `deletion.approved`' }),
    subject: Type.String({ description: 'What the event is about: a deletion id, a GC run id, a policy id' }),
    registry: Nullable(Type.String()),
    teams: Type.Array(Type.String()),
    summary: Type.String({ description: 'One line a chat bot can post as it is' }),
    state: DeliveryStateSchema,
    attempts: Type.Integer({ description: 'HTTP attempts made so far' }),
    lastStatus: Nullable(
      Type.Integer({ description: "The receiver's last HTTP status (null: network error)" }),
    ),
    lastError: Nullable(Type.String()),
    jobId: Nullable(Type.String({ format: 'uuid' })),
    data: Type.Record(Type.String(), Type.Unknown(), { description: "The event's data" }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    deliveredAt: Nullable(Type.String({ format: 'date-time' })),
    failedAt: Nullable(Type.String({ format: 'date-time' })),
  },
  { $id: 'NotificationDelivery', title: 'NotificationDelivery' },
)

export type DeliveryView = Static<typeof DeliverySchema>

export const DeliveryListQuerySchema = Type.Object(
  {
    webhook: Type.Optional(Type.String({ minLength: 1 })),
    state: Type.Optional(DeliveryStateSchema),
    type: Type.Optional(Type.Union(NOTIFICATION_TYPES.map((s) => Type.Literal(s)))),
    subject: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
)

export const DeliveryParamsSchema = Type.Object({ id: Type.String({ format: 'uuid' }) })
