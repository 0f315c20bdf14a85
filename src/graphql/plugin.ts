import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { GraphQLError } from 'graphql'
import mercurius, { type IResolvers, type MercuriusContext, type MercuriusLoaders } from 'mercurius'
import type { FeatureOptions } from '../app-options.js'
import type { Principal, RequestContext } from '../auth/principal.js'
import { databaseUnavailable } from '../db/errors.js'
import { errors, isRegentCode } from '../errors.js'
import { refuseBadInput } from '../http/input-guard.js'
import { requestContext } from '../http/request-context.js'
import { JSONScalar } from './json-scalar.js'
import {
  assertLiteralsTakeable,
  assertWithinLimits,
  envelopeProblem,
  measureQuery,
  noIntrospection,
} from './limits.js'

declare module 'mercurius' {
  interface MercuriusContext {
    principal: Principal
    requestId: string
    sourceIp: string
    userAgent: string | undefined
    /**
     * Aborted when the request runs past graphql.timeoutMs or its client goes away: resolvers pass
     * it to every registry call they start, so abandoned work stops.
     */
    signal: AbortSignal
  }
}

/** One feature's part of the graph: its SDL, resolvers and loaders live in the feature's folder. */
export interface GraphqlModule {
  typeDefs: string
  resolvers: IResolvers
  loaders?: MercuriusLoaders
}

const BASE_TYPE_DEFS = /* GraphQL */ `
  "Any JSON value, taken and given as it is (retention rules and guards, exactly as REST takes them)."
  scalar JSON
  type Query {
    "The authenticated principal."
    me: Principal!
  }
  "Features add their mutations (each feature extends this type)."
  type Mutation {
    _empty: Boolean
  }
  "Features add their subscriptions (each feature extends this type)."
  type Subscription {
    _empty: Boolean
  }
  type Principal {
    subject: String!
    onBehalfOf: String
    teams: [String!]!
    roles: [String!]!
  }
  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }
`

/**
 * GraphQL at /graphql: the same services as REST, the same authentication (the global onRequest
 * hook has already verified the token and built the principal), errors carrying the same REGENT_*
 * codes in `extensions.code`, and a depth limit so one query cannot walk the graph without bound.
 */
export default fp<FeatureOptions>(
  async (app, { config }) => {
    const limits = config.graphql
    const introspection = config.graphql.introspection ?? false
    const resolvers: IResolvers = {
      JSON: JSONScalar,
      Query: {
        me: (_root, _args, ctx) => ({ ...ctx.principal, onBehalfOf: ctx.principal.onBehalfOf ?? null }),
      },
    }
    await app.register(mercurius, {
      schema: BASE_TYPE_DEFS,
      resolvers,
      graphiql: config.graphql.graphiql,
      queryDepth: config.graphql.maxDepth,
      ...(introspection ? {} : { validationRules: [noIntrospection] }),
      additionalRouteOptions: {
        // Before mercurius reads the envelope: `{}`, `{"query": 5}` and the like are 400.
        preValidation: async (request: FastifyRequest) => {
          if (request.headers.upgrade?.toLowerCase() === 'websocket') return
          const problem = envelopeProblem(request.method, request.body, request.query)
          if (problem) throw new errors.BAD_GRAPHQL(problem)
        },
      },
      // Subscriptions ride on the same /graphql route; its HTTP upgrade went through the same
      // authentication hook, so the principal is already on the request.
      subscription: {
        context: (_socket, request: FastifyRequest) => ({
          principal: request.principal,
          requestId: request.id,
          sourceIp: request.ip,
          userAgent: requestContext(request).userAgent,
          signal: new AbortController().signal,
        }),
      },
      context: (request: FastifyRequest, reply: FastifyReply) => ({
        principal: request.principal,
        requestId: request.id,
        sourceIp: request.ip,
        userAgent: requestContext(request).userAgent,
        signal: requestSignal(reply, config.graphql.timeoutMs),
      }),
      errorFormatter: (execution, context) => {
        const log = (context as { reply?: FastifyReply }).reply?.log ?? app.log
        const errors = execution.errors.flatMap((error) => formatError(error, log))
        return { statusCode: httpStatus(execution), response: { data: execution.data ?? null, errors } }
      },
    })
    // Before any resolver (and so before any registry call): what the query may cost, and whether
    // its literals and variables hold text Regent can take.
    app.graphql.addHook('preExecution', async (schema, document, context, variables) => {
      assertLiteralsTakeable(document)
      refuseBadInput({ variables })
      const request = context.reply?.request
      const envelope = (request?.method === 'GET' ? request.query : request?.body) as
        | { operationName?: string | null }
        | undefined
      const measured = measureQuery(schema, document, envelope?.operationName ?? undefined, variables, limits)
      assertWithinLimits(measured, limits)
    })
    app.graphql.addHook('preSubscriptionExecution', async (_schema, document) => {
      assertLiteralsTakeable(document)
    })
  },
  { name: 'graphql', dependencies: ['auth'] },
)

/** The same audit context REST records for a request: its id, source IP and user agent. */
export function contextOf(ctx: MercuriusContext): RequestContext {
  return {
    requestId: ctx.requestId,
    sourceIp: ctx.sourceIp,
    ...(ctx.userAgent ? { userAgent: ctx.userAgent } : {}),
  }
}

/** A page of a list as a connection: its nodes, and where the next page starts. */
export function pageOf<T>(nodes: T[], nextCursor: string | null) {
  return { nodes, pageInfo: { hasNextPage: nextCursor !== null, endCursor: nextCursor } }
}

/**
 * A feature's part of the graph, added while the feature registers: its types extend the root
 * Query, Mutation and Subscription types, so features may register in any order.
 */
export function extendGraph(app: FastifyInstance, module: GraphqlModule): void {
  app.graphql.extendSchema(module.typeDefs)
  app.graphql.defineResolvers(module.resolvers)
  if (module.loaders) app.graphql.defineLoaders(module.loaders)
}

/**
 * The request's abort signal: aborted with REGENT_GRAPHQL_TIMEOUT after `timeoutMs`, or when the
 * connection closes (the answer was sent, or the client gave up), whichever comes first.
 */
function requestSignal(reply: FastifyReply, timeoutMs: number): AbortSignal {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new errors.GRAPHQL_TIMEOUT(timeoutMs)), timeoutMs)
  timer.unref()
  reply.raw.once('close', () => {
    clearTimeout(timer)
    controller.abort(new errors.GRAPHQL_TIMEOUT(timeoutMs))
  })
  return controller.signal
}

/**
 * 200 whenever there is data (partial failures live in `errors`). Without data, a request refused
 * as a whole answers like REST would: 401 without a valid token (with its WWW-Authenticate), 400 for
 * a query that does not validate.
 */
function httpStatus(execution: { data?: unknown; errors: readonly GraphQLError[] }): number {
  if (execution.data) return 200
  const statuses = execution.errors.map((e) => {
    const original = e.originalError as { statusCode?: number; errors?: unknown[] } | undefined
    if (!original || Array.isArray(original.errors)) return 400
    return original.statusCode ?? 500
  })
  const first = statuses[0]
  return first !== undefined && first < 500 && statuses.every((s) => s === first) ? first : 200
}

interface Log {
  error(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
}

function formatError(error: GraphQLError, log: Log): ReturnType<GraphQLError['toJSON']>[] {
  const original = error.originalError as
    | (Error & { code?: string; statusCode?: number; errors?: unknown[] })
    | undefined
  // Mercurius wraps schema validation and depth-limit failures as one error holding a list.
  if (original && Array.isArray(original.errors)) {
    return original.errors.map((inner) => {
      const code = (inner as GraphQLError).extensions?.code
      return new GraphQLError((inner as Error).message, {
        extensions: { code: isRegentCode(code) ? code : 'REGENT_GRAPHQL_INVALID' },
      }).toJSON()
    })
  }
  if (!original) {
    return [withCode(error, 'REGENT_GRAPHQL_INVALID')]
  }
  const status = original.statusCode ?? 500
  if (isRegentCode(original.code) && (status < 500 || original.code !== 'REGENT_INTERNAL')) {
    log.info({ err: original }, 'graphql request refused')
    return [withCode(error, original.code, (original as { details?: unknown }).details)]
  }
  // Mercurius' own refusals (a mutation over GET, variables that are not JSON) are the caller's.
  if (status >= 400 && status < 500) {
    log.info({ err: original }, 'graphql request refused')
    return [withCode(error, 'REGENT_BAD_GRAPHQL')]
  }
  const unavailable = databaseUnavailable(original)
  if (unavailable) {
    log.info({ err: original }, 'graphql request failed: the database is busy or unreachable')
    return [withCode(new GraphQLError(unavailable.message, { path: error.path ?? [] }), unavailable.code)]
  }
  log.error({ err: original }, 'graphql resolver failed')
  return [
    new GraphQLError('Internal server error', {
      path: error.path ?? [],
      extensions: { code: 'REGENT_INTERNAL' },
    }).toJSON(),
  ]
}

/** The error with its REGENT_* code (and, for a validation error, the same `details` as REST). */
function withCode(error: GraphQLError, code: string, details?: unknown) {
  return new GraphQLError(error.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.path ? { path: error.path } : {}),
    extensions: { ...error.extensions, code, ...(details === undefined ? {} : { details }) },
  }).toJSON()
}
