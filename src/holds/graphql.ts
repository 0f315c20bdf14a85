import type { MercuriusContext } from 'mercurius'
import { contextOf, type GraphqlModule } from '../graphql/plugin.js'
import type { HoldsService, PlaceHoldInput } from './service.js'

/** Legal holds as a graph: the same service as REST. */
const typeDefs = /* GraphQL */ `
  extend type Query {
    legalHolds(includeEnded: Boolean = false): [LegalHold!]!
  }
  extend type Mutation {
    placeLegalHold(input: LegalHoldInput!): LegalHold!
    liftLegalHold(id: ID!): LegalHold!
  }
  input LegalHoldInput {
    registry: String
    repository: String!
    digest: String
    reason: String!
    until: String!
  }
  type LegalHold {
    id: ID!
    registry: String!
    repository: String!
    digest: String
    reason: String!
    until: String!
    createdBy: String!
    createdAt: String!
    liftedAt: String
    liftedBy: String
    active: Boolean!
  }
`

export function holdsGraphql(holds: () => HoldsService): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        legalHolds: (_root: unknown, args: { includeEnded: boolean }, ctx: MercuriusContext) =>
          holds().list(ctx.principal, args.includeEnded),
      },
      Mutation: {
        placeLegalHold: (_root: unknown, args: { input: PlaceHoldInput }, ctx: MercuriusContext) =>
          holds().place(ctx.principal, contextOf(ctx), args.input),
        liftLegalHold: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          holds().lift(ctx.principal, contextOf(ctx), args.id),
      },
    },
  }
}
