import type { MercuriusContext } from 'mercurius'
import { type GraphqlModule, pageOf } from '../graphql/plugin.js'
import type { AuditService } from './service.js'

/** The audit log as a graph: the same service, scopes and chain verification as REST. */
const typeDefs = /* GraphQL */ `
  extend type Query {
    auditEvents(
      registry: String
      repository: String
      actor: String
      action: String
      deletionId: ID
      from: String
      to: String
      first: Int = 50
      after: String
    ): AuditEventConnection!
    auditVerification: AuditVerification!
  }
  type AuditEvent {
    id: ID!
    seq: Float!
    occurredAt: String!
    action: String!
    actorSubject: String!
    onBehalfOf: String
    actorTeams: [String!]!
    channel: String!
    sourceIp: String
    userAgent: String
    requestId: String
    registry: String
    repository: String
    tag: String
    digest: String
    deletionId: ID
    outcome: String!
    "The event's details as a JSON text"
    details: String!
    prevHash: String!
    hash: String!
  }
  type AuditEventConnection {
    nodes: [AuditEvent!]!
    pageInfo: PageInfo!
  }
  type AuditVerification {
    ok: Boolean!
    checked: Int!
    lastSeq: Float
    lastHash: String
    firstBrokenSeq: Float
    reason: String
  }
`

export function auditGraphql(audit: () => AuditService): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        auditEvents: async (
          _root: unknown,
          {
            first,
            after,
            ...filters
          }: Record<string, string | undefined> & { first: number; after?: string },
          ctx: MercuriusContext,
        ) => {
          const defined = Object.fromEntries(
            Object.entries(filters).filter(([, v]) => v !== undefined && v !== null),
          )
          const result = await audit().list(ctx.principal, defined, {
            limit: Math.max(1, Math.min(500, first)),
            ...(after ? { cursor: after } : {}),
          })
          return pageOf(
            result.events.map((e) => ({ ...e, details: JSON.stringify(e.details) })),
            result.nextCursor,
          )
        },
        auditVerification: (_root: unknown, _args: unknown, ctx: MercuriusContext) =>
          audit().verify(ctx.principal),
      },
    },
  }
}
