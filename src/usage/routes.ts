import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import {
  SourceParamsSchema,
  UsagePageSchema,
  UsageQuerySchema,
  UsageReferenceSchema,
  UsageSourceViewSchema,
  UsageVerdictSchema,
} from './schemas.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['usage'] }

export const usageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(UsageReferenceSchema)
  app.addSchema(UsageVerdictSchema)
  app.addSchema(UsageSourceViewSchema)

  app.get(
    '/v1/usage',
    {
      schema: {
        ...secured,
        summary: 'Where images of a registry run or are referenced, from the usage sources',
        description:
          'References (pods, workload templates, inventory entries) of the registry, filtered by repository, digest, tag or source, oldest first. With `repository` and `digest`, also the verdict for that digest (in use, unused or unknown), counting the tags that point at it now.',
        querystring: UsageQuerySchema,
        response: { 200: UsagePageSchema, ...errorResponses(400, 401, 403, 404, 502, 503, 504) },
      },
    },
    async (request) => app.usage.list(request.principal, request.query),
  )

  app.get(
    '/v1/usage/sources',
    {
      schema: {
        ...secured,
        summary: 'Each usage source with its last sync: start, end, duration, counts, error, staleness',
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('UsageSource')) }),
          ...errorResponses(401, 403),
        },
      },
    },
    async (request) => ({ items: await app.usage.listSources(request.principal) }),
  )

  app.post(
    '/v1/usage/sources/:name/sync',
    {
      schema: {
        ...secured,
        summary: 'Sync a usage source now (admins); 202 with the job',
        params: SourceParamsSchema,
        response: { 202: Type.Object({ jobId: Type.String() }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await app.usage.requestSync(request.principal, request.params.name)),
  )
}
