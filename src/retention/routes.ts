import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import {
  PolicyInputSchema,
  PolicyParamsSchema,
  PolicySchema,
  PreviewSchema,
  RunParamsSchema,
  RunRequestSchema,
  RunSchema,
} from './schemas.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['retention'] }

export const retentionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(PolicySchema)
  app.addSchema(PreviewSchema)
  app.addSchema(RunSchema)

  app.get(
    '/v1/policies',
    {
      schema: {
        ...secured,
        summary: 'Retention policies, by name',
        querystring: Type.Object({
          team: Type.Optional(Type.String()),
          registry: Type.Optional(Type.String()),
        }),
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('RetentionPolicy')) }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => ({ items: await app.retention.list(request.principal, request.query) }),
  )

  app.post(
    '/v1/policies',
    {
      schema: {
        ...secured,
        summary: 'Create a retention policy (a team’s approvers for the team; admins for global ones)',
        body: PolicyInputSchema,
        response: { 201: Type.Ref('RetentionPolicy'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const policy = await app.retention.create(request.principal, requestContext(request), request.body)
      return reply.code(201).send(policy)
    },
  )

  app.post(
    '/v1/policies/preview',
    {
      schema: {
        ...secured,
        summary:
          'Dry run of an unsaved policy: every tag with its verdict, the rule and the fact that decided it',
        body: PolicyInputSchema,
        response: { 200: Type.Ref('RetentionPreview'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.retention.previewUnsaved(request.principal, request.body),
  )

  app.get(
    '/v1/policies/:id',
    {
      schema: {
        ...secured,
        summary: 'One retention policy',
        params: PolicyParamsSchema,
        response: { 200: Type.Ref('RetentionPolicy'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.retention.get(request.principal, request.params.id),
  )

  app.put(
    '/v1/policies/:id',
    {
      schema: {
        ...secured,
        summary: 'Replace a retention policy (audited; its version goes up)',
        params: PolicyParamsSchema,
        body: PolicyInputSchema,
        response: { 200: Type.Ref('RetentionPolicy'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      app.retention.update(request.principal, requestContext(request), request.params.id, request.body),
  )

  app.delete(
    '/v1/policies/:id',
    {
      schema: {
        ...secured,
        summary: 'Delete a retention policy (kept for the record with its runs; audited)',
        params: PolicyParamsSchema,
        response: { 200: Type.Ref('RetentionPolicy'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.retention.remove(request.principal, requestContext(request), request.params.id),
  )

  app.post(
    '/v1/policies/:id/preview',
    {
      schema: {
        ...secured,
        summary:
          'Evaluate a policy now: verdicts with reasons, bytes, the guard, and the difference from last time',
        params: PolicyParamsSchema,
        response: { 200: Type.Ref('RetentionPreview'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.retention.preview(request.principal, request.params.id),
  )

  app.post(
    '/v1/policies/:id/run',
    {
      schema: {
        ...secured,
        summary: 'Run a policy now: a queued run that files one deletion request (or stops at the guard)',
        params: PolicyParamsSchema,
        body: Type.Optional(RunRequestSchema),
        response: { 202: Type.Ref('RetentionRun'), ...errorResponses(400, 401, 403, 404) },
      },
      // A bot may POST without a body: that is a plain run.
      preValidation: async (request) => {
        request.body ??= {}
      },
    },
    async (request, reply) => {
      const run = await app.retention.requestRun(
        request.principal,
        requestContext(request),
        request.params.id,
        request.body ?? {},
      )
      return reply.code(202).send(run)
    },
  )

  app.get(
    '/v1/policies/:id/runs',
    {
      schema: {
        ...secured,
        summary: 'Runs and previews of a policy, newest first',
        params: PolicyParamsSchema,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }),
        response: {
          200: Type.Object({ items: Type.Array(Type.Ref('RetentionRun')) }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => ({
      items: await app.retention.listRuns(request.principal, request.params.id, request.query.limit),
    }),
  )

  app.get(
    '/v1/policies/:id/runs/:runId',
    {
      schema: {
        ...secured,
        summary: 'One run: what it matched, the guard, the deletion request it filed',
        params: RunParamsSchema,
        response: { 200: Type.Ref('RetentionRun'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.retention.getRun(request.principal, request.params.id, request.params.runId),
  )
}
