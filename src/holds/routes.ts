import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import { PlaceHoldSchema } from './service.js'

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
