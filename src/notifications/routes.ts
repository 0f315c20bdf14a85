import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import { DeliveryListQuerySchema, DeliveryParamsSchema, DeliverySchema } from './schemas.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['notifications'] }

export const notificationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(DeliverySchema)

  app.get(
    '/v1/notifications/deliveries',
    {
      schema: {
        ...secured,
        summary: 'Webhook deliveries, newest first (admins)',
        querystring: DeliveryListQuerySchema,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('NotificationDelivery')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ...filters } = request.query
      return app.notifications.list(request.principal, filters, { limit, ...(cursor ? { cursor } : {}) })
    },
  )

  app.get(
    '/v1/notifications/deliveries/:id',
    {
      schema: {
        ...secured,
        summary: 'One webhook delivery: its state, attempts, last status and error, and the event (admins)',
        params: DeliveryParamsSchema,
        response: { 200: Type.Ref('NotificationDelivery'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.notifications.get(request.principal, request.params.id),
  )

  app.post(
    '/v1/notifications/deliveries/:id/redeliver',
    {
      schema: {
        ...secured,
        summary: 'Send a failed delivery again, with a fresh attempt budget (admins; audited)',
        params: DeliveryParamsSchema,
        response: { 202: Type.Ref('NotificationDelivery'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const delivery = await app.notifications.redeliver(
        request.principal,
        requestContext(request),
        request.params.id,
      )
      return reply.code(202).send(delivery)
    },
  )
}
