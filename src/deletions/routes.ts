import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import {
  CancelSchema,
  CreateDeletionSchema,
  DecisionSchema,
  DeletionActionsSchema,
  DeletionIdParamsSchema,
  DeletionItemSchema,
  DeletionItemsQuerySchema,
  DeletionListQuerySchema,
  DeletionSchema,
  DeletionViewQuerySchema,
  DryRunSchema,
  IdempotencyHeadersSchema,
  PlanSchema,
  RestoreQuerySchema,
} from './schemas.js'
import type { DeletionState } from './state-machine.js'

const secured = { security: [{ bearerAuth: [] }], tags: ['deletions'] }

export const deletionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(PlanSchema)
  app.addSchema(DeletionSchema)
  app.addSchema(DeletionItemSchema)

  app.post(
    '/v1/deletions',
    {
      schema: {
        ...secured,
        summary: 'Request a deletion (or, with dryRun, see its plan without creating anything)',
        description:
          'An `Idempotency-Key` header makes a retry return the same request (200); the same key with another body is 409.',
        headers: IdempotencyHeadersSchema,
        body: CreateDeletionSchema,
        response: {
          200: Type.Union([Type.Ref('Deletion'), DryRunSchema]),
          201: Type.Ref('Deletion'),
          ...errorResponses(400, 401, 403, 404, 409, 422, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const { dryRun, ...input } = request.body
      if (dryRun) {
        const plan = await app.deletions.plan(request.principal, requestContext(request), input)
        return reply.code(200).send({ dryRun: true as const, plan, summary: planSummary(plan) })
      }
      const key = request.headers['idempotency-key']
      const { deletion, created } = await app.deletions.create(
        request.principal,
        requestContext(request),
        input,
        key,
      )
      return reply.code(created ? 201 : 200).send(deletion)
    },
  )

  app.get(
    '/v1/deletions',
    {
      schema: {
        ...secured,
        summary: 'Deletion requests visible to the caller, newest first',
        querystring: DeletionListQuerySchema,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('Deletion')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { limit, cursor, state, ...filters } = request.query
      return app.deletions.list(
        request.principal,
        { ...filters, ...(state ? { state: state as DeletionState } : {}) },
        { limit, ...(cursor ? { cursor } : {}) },
      )
    },
  )

  app.get(
    '/v1/deletions/:id',
    {
      schema: {
        ...secured,
        summary: 'One deletion request with its plan and approvals',
        description: 'With `view=summary` the plan’s items are left out, for polling.',
        params: DeletionIdParamsSchema,
        querystring: DeletionViewQuerySchema,
        response: { 200: Type.Ref('Deletion'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.deletions.get(request.principal, request.params.id, request.query.view),
  )

  app.get(
    '/v1/deletions/:id/items',
    {
      schema: {
        ...secured,
        summary: 'The items of a request with what execution did to each, in plan order',
        params: DeletionIdParamsSchema,
        querystring: DeletionItemsQuerySchema,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('DeletionItem')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const { limit, cursor, state } = request.query
      return app.deletions.items(request.principal, request.params.id, {
        limit,
        ...(cursor ? { cursor } : {}),
        ...(state ? { state } : {}),
      })
    },
  )

  app.post(
    '/v1/deletions/:id/replan',
    {
      schema: {
        ...secured,
        summary: 'File a request again with a fresh plan, for fresh approval (requester or admin)',
        description:
          'For a request whose plan changed: still awaiting approval (it is cancelled and points at the new one), expired, or executed with items left alone (`plan_changed`) or failed — the new request covers those items. An `Idempotency-Key` header makes a retry return the same new request.',
        params: DeletionIdParamsSchema,
        headers: IdempotencyHeadersSchema,
        response: {
          200: Type.Ref('Deletion'),
          201: Type.Ref('Deletion'),
          ...errorResponses(400, 401, 403, 404, 409, 422, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const { deletion, created } = await app.deletions.replan(
        request.principal,
        requestContext(request),
        request.params.id,
        request.headers['idempotency-key'],
      )
      return reply.code(created ? 201 : 200).send(deletion)
    },
  )

  app.get(
    '/v1/deletions/:id/actions',
    {
      schema: {
        ...secured,
        summary:
          'What the caller may do with the request now (approve, reject, cancel, retry, restore), and why not',
        params: DeletionIdParamsSchema,
        response: { 200: DeletionActionsSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => app.deletions.actions(request.principal, request.params.id),
  )

  app.post(
    '/v1/deletions/:id/approvals',
    {
      schema: {
        ...secured,
        summary: 'Approve or reject a request awaiting approval',
        params: DeletionIdParamsSchema,
        body: DecisionSchema,
        response: { 200: Type.Ref('Deletion'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      app.deletions.decide(request.principal, requestContext(request), request.params.id, request.body),
  )

  app.post(
    '/v1/deletions/:id/cancel',
    {
      schema: {
        ...secured,
        summary: 'Cancel a request before it executes (requester or admin)',
        params: DeletionIdParamsSchema,
        body: Type.Optional(CancelSchema),
        response: { 200: Type.Ref('Deletion'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      app.deletions.cancel(
        request.principal,
        requestContext(request),
        request.params.id,
        request.body?.reason,
      ),
  )

  app.post(
    '/v1/deletions/:id/retry',
    {
      schema: {
        ...secured,
        summary: 'Re-run only the failed items of a partially failed or failed request',
        params: DeletionIdParamsSchema,
        response: { 200: Type.Ref('Deletion'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => app.deletions.retry(request.principal, requestContext(request), request.params.id),
  )

  app.post(
    '/v1/deletions/:id/restore',
    {
      schema: {
        ...secured,
        summary:
          'Push the deleted manifests back and re-point their tags (until the next GC of the registry)',
        description:
          'A tag pushed again since the deletion is never re-pointed: its item ends `tag_taken` (see /items) unless an admin asks with `force=true`.',
        params: DeletionIdParamsSchema,
        querystring: RestoreQuerySchema,
        response: { 200: Type.Ref('Deletion'), ...errorResponses(400, 401, 403, 404, 409, 502, 503, 504) },
      },
    },
    async (request) =>
      app.deletions.restore(request.principal, requestContext(request), request.params.id, {
        force: request.query.force === true,
      }),
  )
}

function planSummary(plan: {
  items: unknown[]
  problems: { message: string }[]
  approvals: { count: number }
  bytesFreed: number
}) {
  const head = `Dry run: ${plan.items.length} item(s), ~${plan.bytesFreed} bytes freed, ${plan.approvals.count} approval(s) needed`
  return plan.problems.length > 0
    ? `${head}; refused: ${plan.problems.map((p) => p.message).join('; ')}`
    : head
}
