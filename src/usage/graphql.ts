import type { MercuriusContext } from 'mercurius'
import { type GraphqlModule, pageOf } from '../graphql/plugin.js'
import type { UsageService } from './service.js'

/** Usage as a graph: the same service as REST, so the same filters, limits and codes. */
const typeDefs = /* GraphQL */ `
  extend type Query {
    "Where images of a registry run or are referenced; with repository and digest, the digest's verdict."
    usage(
      registry: String!
      repository: String
      digest: String
      tag: String
      source: String
      first: Int = 100
      after: String
    ): UsageConnection!
    "Each usage source with its last sync."
    usageSources: [UsageSource!]!
  }
  type UsageOwner {
    kind: String!
    name: String!
  }
  type UsageReference {
    id: ID!
    source: String!
    registry: String!
    repository: String!
    digest: String
    tag: String
    cluster: String!
    namespace: String!
    kind: String!
    name: String!
    container: String!
    owner: UsageOwner
    running: Boolean!
    pods: Int!
    firstSeenAt: String!
    lastSeenAt: String!
  }
  type UsageLocation {
    source: String!
    cluster: String!
    namespace: String!
    kind: String!
    name: String!
    container: String!
    "running, digest or tag"
    by: String!
    reference: String!
    pods: Int!
    firstSeenAt: String!
  }
  type UsageVerdict {
    "in-use, unused or unknown"
    status: String!
    where: [UsageLocation!]!
    staleSources: [String!]!
    lastPulledAt: String
    tags: [String!]!
    summary: String!
  }
  type UsageConnection {
    nodes: [UsageReference!]!
    pageInfo: PageInfo!
    verdict: UsageVerdict
  }
  type UsageSource {
    name: String!
    kind: String!
    registries: [String!]
    refreshIntervalMs: Float!
    staleAfterMs: Float!
    stale: Boolean!
    lastSyncStartedAt: String
    lastSyncFinishedAt: String
    lastSyncDurationMs: Int
    lastOutcome: String
    lastSuccessAt: String
    lastError: String
    lastErrorAt: String
    "Counts of the last successful sync: pods, workloads, references, unmatched, pages, restarts…"
    counts: JSON!
  }
`

const DIGEST = /^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$/

export function usageGraphql(
  service: () => UsageService,
  invalid: (message: string) => Error,
): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        usage: async (
          _root: unknown,
          args: {
            registry: string
            repository?: string
            digest?: string
            tag?: string
            source?: string
            first: number
            after?: string
          },
          ctx: MercuriusContext,
        ) => {
          // The REST route's querystring schema, as far as it is not the GraphQL types already.
          if (args.digest && !DIGEST.test(args.digest)) throw invalid('digest must be sha256:… or sha512:…')
          if (args.first < 1 || args.first > 1000) throw invalid('first must be between 1 and 1000')
          const page = await service().list(ctx.principal, {
            registry: args.registry,
            ...(args.repository ? { repository: args.repository } : {}),
            ...(args.digest ? { digest: args.digest } : {}),
            ...(args.tag ? { tag: args.tag } : {}),
            ...(args.source ? { source: args.source } : {}),
            limit: args.first,
            ...(args.after ? { cursor: args.after } : {}),
          })
          return { ...pageOf(page.items, page.nextCursor), verdict: page.verdict }
        },
        usageSources: (_root: unknown, _args: unknown, ctx: MercuriusContext) =>
          service().listSources(ctx.principal),
      },
    },
  }
}
