import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import {
  ManifestParamsSchema,
  ManifestViewSchema,
  PageQuerySchema,
  RegistryParamsSchema,
  RegistryViewSchema,
  RepositoryPageSchema,
  RepositoryParamsSchema,
  RepositoryQuerySchema,
  TagPageSchema,
  TagSchema,
} from './schemas.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['browse'] }

export const registryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(RegistryViewSchema)
  app.addSchema(TagSchema)
  app.addSchema(ManifestViewSchema)

  app.get(
    '/v1/registries',
    {
      schema: {
        ...secured,
        summary: 'Configured registries with their probed capabilities and health',
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('Registry')) }),
          ...errorResponses(401, 403),
        },
      },
    },
    async (request) => ({ items: await app.browse.listRegistries(request.principal) }),
  )

  app.get(
    '/v1/registries/:registry/repositories',
    {
      schema: {
        ...secured,
        summary: 'Repositories of a registry, optionally under a prefix, in pages',
        params: RegistryParamsSchema,
        querystring: RepositoryQuerySchema,
        response: { 200: RepositoryPageSchema, ...errorResponses(400, 401, 403, 404, 502, 503, 504) },
      },
    },
    async (request) => app.browse.listRepositories(request.principal, request.params.registry, request.query),
  )

  app.get(
    '/v1/registries/:registry/repositories/:repository/tags',
    {
      schema: {
        ...secured,
        summary: 'Tags of a repository with digest, media type, platforms, size, age and sibling tags',
        params: RepositoryParamsSchema,
        querystring: PageQuerySchema,
        response: { 200: TagPageSchema, ...errorResponses(400, 401, 403, 404, 502, 503, 504) },
      },
    },
    async (request) =>
      app.browse.listTags(
        request.principal,
        request.params.registry,
        request.params.repository,
        request.query,
      ),
  )

  app.get(
    '/v1/registries/:registry/repositories/:repository/manifests/:reference',
    {
      schema: {
        ...secured,
        summary: 'A manifest summarised: config, layers, history, index children, referrers',
        params: ManifestParamsSchema,
        response: { 200: Type.Ref('Manifest'), ...errorResponses(400, 401, 403, 404, 422, 502, 503, 504) },
      },
    },
    async (request) =>
      app.browse.getManifest(
        request.principal,
        request.params.registry,
        request.params.repository,
        request.params.reference,
      ),
  )
}
