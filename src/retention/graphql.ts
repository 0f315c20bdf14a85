import type { MercuriusContext } from 'mercurius'
import { contextOf, type GraphqlModule } from '../graphql/plugin.js'
import type { PolicyInput } from './policies.js'
import type { RetentionService } from './service.js'

/**
 * Retention policies as a graph: the same service as REST. Rules are JSON (the rule language of
 * rules.ts, as in REST), so the graph and the API take the very same documents.
 */
const typeDefs = /* GraphQL */ `
  extend type Query {
    retentionPolicies(team: String, registry: String): [RetentionPolicy!]!
    retentionPolicy(id: ID!): RetentionPolicy!
    retentionRuns(policyId: ID!, first: Int = 50): [RetentionRun!]!
  }
  extend type Mutation {
    createRetentionPolicy(input: JSON!): RetentionPolicy!
    updateRetentionPolicy(id: ID!, input: JSON!): RetentionPolicy!
    deleteRetentionPolicy(id: ID!): RetentionPolicy!
    "Evaluate a saved policy (id) or an unsaved one (input): verdicts with reasons, bytes, guard, diff."
    previewRetentionPolicy(id: ID, input: JSON): RetentionPreview!
    runRetentionPolicy(id: ID!, overrideGuards: Boolean = false): RetentionRun!
  }
  type RetentionPolicy {
    id: ID!
    name: String!
    team: String
    registry: String!
    repositories: [String!]!
    rules: JSON!
    default: String!
    schedule: String
    mode: String!
    enabled: Boolean!
    guards: JSON!
    version: Int!
    createdBy: String!
    updatedBy: String!
    createdAt: String!
    updatedAt: String!
  }
  type RetentionVerdict {
    repository: String!
    tag: String
    digest: String!
    verdict: String!
    decidedBy: String!
    fact: String!
  }
  type RetentionPreview {
    id: ID
    evaluatedAt: String!
    counts: JSON!
    verdicts: [RetentionVerdict!]!
    repositories: JSON!
    guard: JSON!
    diff: JSON!
    summary: String!
  }
  type RetentionRun {
    id: ID!
    policyId: ID!
    policyVersion: Int!
    trigger: String!
    slot: String
    state: String!
    requestedBy: String!
    overrideGuards: Boolean!
    counts: JSON
    expired: JSON
    guard: JSON
    deletionId: ID
    jobId: ID
    error: String
    createdAt: String!
    finishedAt: String
    summary: String!
  }
`

export function retentionGraphql(
  service: () => RetentionService,
  validate: (input: unknown) => PolicyInput,
): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        retentionPolicies: (
          _root: unknown,
          args: { team?: string; registry?: string },
          ctx: MercuriusContext,
        ) =>
          service().list(ctx.principal, {
            ...(args.team ? { team: args.team } : {}),
            ...(args.registry ? { registry: args.registry } : {}),
          }),
        retentionPolicy: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          service().get(ctx.principal, args.id),
        retentionRuns: (_root: unknown, args: { policyId: string; first: number }, ctx: MercuriusContext) =>
          service().listRuns(ctx.principal, args.policyId, Math.max(1, Math.min(200, args.first))),
      },
      Mutation: {
        createRetentionPolicy: (_root: unknown, args: { input: unknown }, ctx: MercuriusContext) =>
          service().create(ctx.principal, contextOf(ctx), validate(args.input)),
        updateRetentionPolicy: (
          _root: unknown,
          args: { id: string; input: unknown },
          ctx: MercuriusContext,
        ) => service().update(ctx.principal, contextOf(ctx), args.id, validate(args.input)),
        deleteRetentionPolicy: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          service().remove(ctx.principal, contextOf(ctx), args.id),
        previewRetentionPolicy: (
          _root: unknown,
          args: { id?: string; input?: unknown },
          ctx: MercuriusContext,
        ) =>
          args.id
            ? service().preview(ctx.principal, args.id)
            : service().previewUnsaved(ctx.principal, validate(args.input)),
        runRetentionPolicy: (
          _root: unknown,
          args: { id: string; overrideGuards: boolean },
          ctx: MercuriusContext,
        ) =>
          service().requestRun(ctx.principal, contextOf(ctx), args.id, {
            overrideGuards: args.overrideGuards,
          }),
      },
    },
  }
}
