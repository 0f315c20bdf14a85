import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'

const HoldSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    registry: Type.String(),
    repository: Type.String(),
    digest: Type.Union([Type.String(), Type.Null()]),
    reason: Type.String(),
    until: Type.String(),
    createdBy: Type.String(),
    createdAt: Type.String(),
    liftedAt: Type.Union([Type.String(), Type.Null()]),
    liftedBy: Type.Union([Type.String(), Type.Null()]),
    active: Type.Boolean(),
  },
  { $id: 'LegalHold', title: 'LegalHold' },
)

const PlaceHoldSchema = Type.Object(
  {
    registry: Type.Optional(Type.String({ minLength: 1, description: 'Registry name glob (default `*`)' })),
    repository: Type.String({ minLength: 1, description: 'Repository glob, e.g. `payments/**`' }),
    digest: Type.Optional(Type.String({ pattern: '^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$' })),
    reason: Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S' }),
    until: Type.String({ format: 'date-time', description: 'When the hold ends by itself' }),
  },
  { additionalProperties: false },
)

const secured = { security: [{ bearerAuth: [] }], tags: ['legal holds'] }

export const holdRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(HoldSchema)

  app.post(
    '/v1/legal-holds',
    {
      schema: {
        ...secured,
        summary: 'Place a legal hold (admins)',
        body: PlaceHoldSchema,
        response: { 201: Type.Ref('LegalHold'), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await app.holds.place(request.principal, requestContext(request), request.body)),
  )

  app.get(
    '/v1/legal-holds',
    {
      schema: {
        ...secured,
        summary: 'Legal holds (active ones, or all with includeEnded)',
        querystring: Type.Object({ includeEnded: Type.Boolean({ default: false }) }),
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('LegalHold')) }),
          ...errorResponses(401, 403),
        },
      },
    },
    async (request) => ({ items: await app.holds.list(request.principal, request.query.includeEnded) }),
  )

  app.post(
    '/v1/legal-holds/:id/lift',
    {
      schema: {
        ...secured,
        summary: 'Lift a legal hold before it ends (admins)',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: Type.Ref('LegalHold'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.holds.lift(request.principal, requestContext(request), request.params.id),
  )
}
