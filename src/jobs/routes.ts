import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { JobParamsSchema, JobViewSchema } from './schemas.js'
import { type JobVisibility, viewJob } from './service.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['jobs'] }

/** GET /v1/jobs/{id}; who may read a job is up to the feature that owns its kind. */
export const jobRoutes: FastifyPluginAsyncTypebox<{ visible: JobVisibility }> = async (app, { visible }) => {
  app.addSchema(JobViewSchema)

  app.get(
    '/v1/jobs/:id',
    {
      schema: {
        ...secured,
        summary: 'A queued job: state, attempts, progress, last error and timestamps',
        params: JobParamsSchema,
        response: { 200: Type.Ref('Job'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => viewJob(app.db, request.principal, request.params.id, visible),
  )
}
