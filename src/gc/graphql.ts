import type { MercuriusContext } from 'mercurius'
import { contextOf, type GraphqlModule, pageOf } from '../graphql/plugin.js'
import type { GcService } from './service.js'
import type { GcState } from './sql.js'

/** GC runs as a graph: the same service as REST, so the same exclusivity, audit and codes. */
const typeDefs = /* GraphQL */ `
  extend type Query {
    gcRuns(registry: String, state: String, first: Int = 50, after: String): GcRunConnection!
    gcRun(id: ID!): GcRun!
  }
  extend type Subscription {
    "The run each time it changes (a step starts or ends), from whichever replica runs it."
    gcRunUpdated(id: ID!): GcRun!
  }
  extend type Mutation {
    "Queue a garbage collection of the registry (admins); 409 REGENT_GC_ALREADY_RUNNING if one is queued or running."
    requestGc(registry: String!, dryRun: Boolean = false, deleteUntagged: Boolean = false): GcRun!
  }
  type GcStep {
    name: String!
    attempt: Int!
    startedAt: String!
    finishedAt: String
    ok: Boolean
    output: String!
  }
  type GcEligible {
    markedBlobs: Float
    blobs: Float
    manifests: Float
    bytes: Float
    share: Float
  }
  type GcCollected {
    blobs: Float
    manifests: Float
  }
  type GcRequester {
    subject: String!
    onBehalfOf: String
  }
  type GcRun {
    id: ID!
    registry: String!
    trigger: String!
    requestedBy: GcRequester!
    dryRun: Boolean!
    deleteUntagged: Boolean!
    state: String!
    failedStep: String
    error: String
    steps: [GcStep!]!
    eligible: GcEligible!
    collected: GcCollected!
    bytesBefore: Float
    bytesAfter: Float
    bytesFreed: Float
    "The last 64 KiB of output (null in lists)"
    log: String
    jobId: ID
    notBefore: String!
    createdAt: String!
    startedAt: String
    finishedAt: String
    summary: String!
  }
  type GcRunConnection {
    nodes: [GcRun!]!
    pageInfo: PageInfo!
  }
`

export const gcRunTopic = (id: string) => `gc-run:${id}`

export function gcGraphql(service: () => GcService): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        gcRuns: async (
          _root: unknown,
          args: { registry?: string; state?: string; first: number; after?: string },
          ctx: MercuriusContext,
        ) => {
          const result = await service().list(
            ctx.principal,
            {
              ...(args.registry ? { registry: args.registry } : {}),
              ...(args.state ? { state: args.state as GcState } : {}),
            },
            { limit: Math.max(1, Math.min(200, args.first)), ...(args.after ? { cursor: args.after } : {}) },
          )
          return pageOf(result.items, result.nextCursor)
        },
        gcRun: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          service().get(ctx.principal, args.id),
      },
      Subscription: {
        gcRunUpdated: {
          // The same checks as gcRun (a role, an existing run), then the stream.
          subscribe: async (_root: unknown, args: { id: string }, ctx: MercuriusContext) => {
            await service().get(ctx.principal, args.id)
            return ctx.pubsub.subscribe(gcRunTopic(args.id))
          },
        },
      },
      Mutation: {
        requestGc: (
          _root: unknown,
          args: { registry: string; dryRun?: boolean; deleteUntagged?: boolean },
          ctx: MercuriusContext,
        ) =>
          service().request(ctx.principal, contextOf(ctx), args.registry, {
            dryRun: args.dryRun ?? false,
            deleteUntagged: args.deleteUntagged ?? false,
          }),
      },
    },
  }
}
