import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import {
  GcRequestSchema,
  GcRunListQuerySchema,
  GcRunParamsSchema,
  GcRunSchema,
  RegistryParamsSchema,
} from './schemas.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['gc'] }

export const gcRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(GcRunSchema)

  app.post(
    '/v1/registries/:registry/gc',
    {
      schema: {
        ...secured,
        summary: 'Run garbage collection on a registry (admins), or with dryRun see what it would remove',
        description:
          'At most one run per registry is queued or running: another request is 409 `REGENT_GC_ALREADY_RUNNING` naming it, except that a request takes over a queued coalesced or scheduled run and starts it now (a dry run queues the real run again after itself).',
        params: RegistryParamsSchema,
        body: Type.Optional(GcRequestSchema),
        response: { 201: Type.Ref('GcRun'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const run = await app.gc.request(
        request.principal,
        requestContext(request),
        request.params.registry,
        request.body ?? {},
      )
      return reply.code(201).send(run)
    },
  )

  app.get(
    '/v1/gc-runs',
    {
      schema: {
        ...secured,
        summary: 'GC runs, newest first (without their logs)',
        querystring: GcRunListQuerySchema,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('GcRun')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { limit, cursor, registry, state } = request.query
      return app.gc.list(
        request.principal,
        { ...(registry ? { registry } : {}), ...(state ? { state } : {}) },
        { limit, ...(cursor ? { cursor } : {}) },
      )
    },
  )

  app.get(
    '/v1/gc-runs/:id',
    {
      schema: {
        ...secured,
        summary: 'One GC run: state, steps, what the dry run found, bytes before and after, its log',
        params: GcRunParamsSchema,
        response: { 200: Type.Ref('GcRun'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.gc.get(request.principal, request.params.id),
  )
}
