import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'

const AuditEventSchema = Type.Object(
  {
    id: Type.String(),
    seq: Type.Integer(),
    occurredAt: Type.String(),
    action: Type.String(),
    actorSubject: Type.String(),
    onBehalfOf: Type.Union([Type.String(), Type.Null()]),
    actorTeams: Type.Array(Type.String()),
    channel: Type.String(),
    sourceIp: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    registry: Type.Union([Type.String(), Type.Null()]),
    repository: Type.Union([Type.String(), Type.Null()]),
    tag: Type.Union([Type.String(), Type.Null()]),
    digest: Type.Union([Type.String(), Type.Null()]),
    deletionId: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.String(),
    details: Type.Record(Type.String(), Type.Unknown()),
    prevHash: Type.String(),
    hash: Type.String(),
    schemaVersion: Type.Integer(),
  },
  { $id: 'AuditEvent', title: 'AuditEvent' },
)

const FiltersSchema = Type.Object({
  registry: Type.Optional(Type.String()),
  repository: Type.Optional(Type.String()),
  actor: Type.Optional(Type.String()),
  action: Type.Optional(Type.String()),
  deletionId: Type.Optional(Type.String({ format: 'uuid' })),
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
})

const secured = { security: [{ bearerAuth: [] }], tags: ['audit'] }

export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(AuditEventSchema)

  app.get(
    '/v1/audit',
    {
      schema: {
        ...secured,
        summary: 'Audit events, newest first, with filters and keyset pagination',
        querystring: Type.Intersect([
          FiltersSchema,
          Type.Object({
            limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
          }),
        ]),
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('AuditEvent')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filters } = request.query
      const page = await app.audit.list(request.principal, filters, { limit, ...(cursor ? { cursor } : {}) })
      return { items: page.events, nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/v1/audit/export',
    {
      schema: {
        ...secured,
        summary: 'Audit events as NDJSON, oldest first, streamed (for a SIEM)',
        querystring: FiltersSchema,
        produces: ['application/x-ndjson'],
        // No 200 schema: the body is a stream, not one JSON document.
        response: errorResponses(400, 401, 403),
      },
    },
    async (request, reply) => {
      const events = await app.audit.stream(request.principal, request.query)
      async function* lines() {
        for await (const event of events) yield `${JSON.stringify(event)}\n`
      }
      reply.header('content-type', 'application/x-ndjson')
      return reply.send(Readable.from(lines()))
    },
  )

  app.get(
    '/v1/audit/verify',
    {
      schema: {
        ...secured,
        summary: 'Walk the hash chain and report the first broken or missing link (admins)',
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            checked: Type.Integer(),
            lastSeq: Type.Optional(Type.Integer()),
            lastHash: Type.Optional(Type.String()),
            firstBrokenSeq: Type.Optional(Type.Integer()),
            reason: Type.Optional(Type.String()),
          }),
          ...errorResponses(401, 403),
        },
      },
    },
    async (request) => {
      return app.audit.verify(request.principal)
    },
  )
}
