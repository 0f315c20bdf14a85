import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'

const RoleSchema = Type.Union([
  Type.Literal('viewer'),
  Type.Literal('requester'),
  Type.Literal('approver'),
  Type.Literal('admin'),
  Type.Literal('bot'),
])

export const PrincipalSchema = Type.Object(
  {
    subject: Type.String(),
    onBehalfOf: Type.Optional(Type.String()),
    teams: Type.Array(Type.String()),
    roles: Type.Array(RoleSchema),
  },
  { $id: 'Principal', title: 'Principal' },
)

/** `GET /v1/me`: who Regent takes the caller to be; bots use it to check their on-behalf-of setup. */
export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/me',
    {
      schema: {
        tags: ['auth'],
        summary: 'The authenticated principal',
        security: [{ bearerAuth: [] }],
        response: { 200: PrincipalSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const { subject, onBehalfOf, teams, roles } = request.principal
      return { subject, ...(onBehalfOf ? { onBehalfOf } : {}), teams, roles }
    },
  )
}
