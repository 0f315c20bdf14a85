import { type Static, Type } from 'typebox'

/**
 * The distribution notification envelope (distribution `notifications/event.go`, media type
 * `application/vnd.docker.distribution.events.v1+json`). Only what Regent reads is described, and
 * unknown fields are allowed: registries add fields over versions, and a refused envelope is
 * retried by the registry forever and holds up its queue. Manifest push and pull events are checked
 * further by the service (repository, digest, tag grammar; a real timestamp).
 */
const TargetSchema = Type.Object({
  mediaType: Type.Optional(Type.String({ maxLength: 255 })),
  digest: Type.Optional(Type.String({ maxLength: 200 })),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  length: Type.Optional(Type.Integer({ minimum: 0 })),
  repository: Type.Optional(Type.String({ maxLength: 255 })),
  url: Type.Optional(Type.String({ maxLength: 4096 })),
  tag: Type.Optional(Type.String({ maxLength: 128 })),
})

const RequestSchema = Type.Object({
  id: Type.Optional(Type.String()),
  addr: Type.Optional(Type.String()),
  host: Type.Optional(Type.String()),
  method: Type.Optional(Type.String()),
  useragent: Type.Optional(Type.String()),
})

export const RegistryEventSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 255 }),
  timestamp: Type.String({ minLength: 1, maxLength: 64, description: 'RFC 3339, the registry clock' }),
  action: Type.String({
    minLength: 1,
    maxLength: 32,
    description:
      '`push` and `pull` of manifests are recorded; `delete`, `mount`, blob events and any other action are acknowledged and ignored',
  }),
  target: Type.Optional(TargetSchema),
  request: Type.Optional(RequestSchema),
  actor: Type.Optional(Type.Object({})),
  source: Type.Optional(Type.Object({})),
})

export const EventEnvelopeSchema = Type.Object(
  { events: Type.Array(RegistryEventSchema, { maxItems: 10_000 }) },
  { title: 'RegistryEventEnvelope' },
)

export const EventCountsSchema = Type.Object(
  {
    accepted: Type.Integer({ description: 'New manifest push and pull events, recorded' }),
    duplicates: Type.Integer({
      description: 'Manifest events whose id was taken in before: changed nothing',
    }),
    ignored: Type.Integer({
      description:
        "Events that do not count: blob events, deletes, mounts, other actions, and Regent's own manifest reads",
    }),
  },
  { $id: 'RegistryEventCounts', title: 'RegistryEventCounts' },
)

export type RegistryEvent = Static<typeof RegistryEventSchema>
export type EventEnvelope = Static<typeof EventEnvelopeSchema>
export type EventCounts = Static<typeof EventCountsSchema>

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json'
export const EVENT_SECRET_HEADER = 'x-regent-event-secret'
