import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { JobParamsSchema, JobViewSchema } from './schemas.js'
import { type JobVisibility, viewJob } from './service.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['jobs'] }

/** GET /v1/jobs/{id}; `visibility` comes from the features that own the job kinds. */
export const jobRoutes: FastifyPluginAsyncTypebox<{ visibility: JobVisibility }> = async (
  app,
  { visibility },
) => {
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
    async (request) => viewJob(app.db, request.principal, request.params.id, visibility),
  )
}
