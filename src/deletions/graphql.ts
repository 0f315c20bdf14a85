import type { MercuriusContext } from 'mercurius'
import { errors } from '../errors.js'
import { contextOf, type GraphqlModule, pageOf } from '../graphql/plugin.js'
import type { CreateDeletionInput, DeletionService } from './service.js'
import type { DeletionState } from './state-machine.js'

/**
 * Deletions as a graph: the same service as REST, so the same plans, the same authorization, the
 * same audit events and the same REGENT_* codes.
 */
const typeDefs = /* GraphQL */ `
  extend type Query {
    deletions(
      state: String
      registry: String
      requester: String
      "Only requests the caller may approve now and has not decided on"
      awaitingMyApproval: Boolean
      first: Int = 50
      after: String
    ): DeletionConnection!
    "The request; view: summary leaves the plan's items out (page through items instead)."
    deletion(id: ID!, view: String = "full"): Deletion!
  }
  extend type Subscription {
    "The request each time its state or progress changes (from any replica's worker)."
    deletionUpdated(id: ID!): Deletion!
  }
  extend type Mutation {
    "The plan of a deletion, resolved exactly as createDeletion would, without creating anything."
    planDeletion(input: DeletionInput!): Plan!
    createDeletion(input: DeletionInput!, idempotencyKey: String): CreatedDeletion!
    decideDeletion(id: ID!, decision: Decision!, comment: String, planHash: String): Deletion!
    cancelDeletion(id: ID!, reason: String): Deletion!
    retryDeletion(id: ID!): Deletion!
    "force (admins only): also re-point tags pushed again since the deletion."
    restoreDeletion(id: ID!, force: Boolean = false): Deletion!
    "Files the request again with a fresh plan for fresh approval, after its plan changed."
    replanDeletion(id: ID!, idempotencyKey: String): CreatedDeletion!
  }
  enum Decision {
    approve
    reject
  }
  input TargetInput {
    repository: String!
    tag: String
    digest: String
    tagPattern: String
  }
  input DeletionInput {
    registry: String!
    verb: String!
    targets: [TargetInput!]!
    reason: String!
    ticket: String
  }
  type Target {
    repository: String!
    tag: String
    digest: String
    tagPattern: String
  }
  type Protection {
    level: String!
    rule: String
    tag: String
  }
  type PlanItem {
    repository: String!
    tag: String
    digest: String!
    mediaType: String!
    action: String!
    vanishingTags: [String!]!
    untagMethod: String
    bytes: Float!
    protection: Protection!
    note: String
    dangling: Boolean
    inUse: ItemUsage
  }
  type ItemUsage {
    status: String!
    reason: String!
    policy: String!
    where: [UsageLocation!]!
  }
  type KeptManifest {
    repository: String!
    digest: String!
    tags: [String!]!
    reason: String!
  }
  type DeletionItem {
    position: Int!
    repository: String!
    tag: String
    digest: String!
    mediaType: String!
    action: String!
    vanishingTags: [String!]!
    state: String!
    outcome: String
    errorCode: String
    error: String
    attempts: Int!
    restorable: Boolean!
    restoreOutcome: String
    restoreNote: String
    verifiedAt: String
    deleteIssuedAt: String
    finishedAt: String
  }
  type DeletionItemConnection {
    nodes: [DeletionItem!]!
    pageInfo: PageInfo!
  }
  type PlanProblem {
    code: String!
    message: String!
  }
  type PlanRepository {
    repository: String!
    totalTags: Int!
    itemsInRepo: Int!
    owningTeams: [String!]!
  }
  type ApprovalRequirement {
    count: Int!
    from: [String!]!
    adminCount: Int!
    reasons: [String!]!
  }
  type Plan {
    registry: String!
    verb: String!
    items: [PlanItem!]!
    problems: [PlanProblem!]!
    warnings: [String!]!
    kept: [KeptManifest!]!
    bytesFreed: Float!
    repositories: [PlanRepository!]!
    approvals: ApprovalRequirement!
    hash: String!
  }
  type Requester {
    subject: String!
    onBehalfOf: String
    person: String!
  }
  type GivenApproval {
    approver: String!
    as: String!
    decision: String!
    comment: String
    at: String!
  }
  type Approvals {
    required: ApprovalRequirement!
    missing: Int!
    missingAdmins: Int!
    given: [GivenApproval!]!
  }
  type Deletion {
    id: ID!
    registry: String!
    verb: String!
    state: String!
    reason: String!
    ticket: String
    requester: Requester!
    targets: [Target!]!
    plan: Plan!
    planHash: String!
    approvals: Approvals!
    progress: Progress!
    planChanged: Int!
    replanOf: ID
    view: String!
    "What execution did to each item, in plan order."
    items(state: String, first: Int = 100, after: String): DeletionItemConnection!
    jobId: ID
    expiresAt: String
    createdAt: String!
    updatedAt: String!
    summary: String!
  }
  type Progress {
    total: Int!
    pending: Int!
    deleted: Int!
    skipped: Int!
    failed: Int!
  }
  type CreatedDeletion {
    deletion: Deletion!
    "false when an earlier call with the same idempotency key created it"
    created: Boolean!
  }
  type DeletionConnection {
    nodes: [Deletion!]!
    pageInfo: PageInfo!
  }
`

export const deletionTopic = (id: string) => `deletion:${id}`

const ITEM_STATES = ['pending', 'deleted', 'skipped', 'failed'] as const

export function deletionsGraphql(deletions: () => DeletionService): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        deletions: async (
          _root: unknown,
          args: {
            state?: string
            registry?: string
            requester?: string
            awaitingMyApproval?: boolean
            first: number
            after?: string
          },
          ctx: MercuriusContext,
        ) => {
          const result = await deletions().list(
            ctx.principal,
            {
              ...(args.state ? { state: args.state as DeletionState } : {}),
              ...(args.registry ? { registry: args.registry } : {}),
              ...(args.requester ? { requester: args.requester } : {}),
              ...(args.awaitingMyApproval ? { awaitingMyApproval: true } : {}),
            },
            { limit: Math.max(1, Math.min(200, args.first)), ...(args.after ? { cursor: args.after } : {}) },
          )
          return pageOf(result.items, result.nextCursor)
        },
        deletion: (_root: unknown, args: { id: string; view?: string }, ctx: MercuriusContext) =>
          deletions().get(ctx.principal, args.id, args.view === 'summary' ? 'summary' : 'full'),
      },
      Deletion: {
        items: async (
          deletion: { id: string },
          args: { state?: string; first: number; after?: string },
          ctx: MercuriusContext,
        ) => {
          const state = ITEM_STATES.find((s) => s === args.state)
          if (args.state && !state)
            throw new errors.VALIDATION(`state must be one of ${ITEM_STATES.join(', ')}`)
          const result = await deletions().items(ctx.principal, deletion.id, {
            limit: Math.max(1, Math.min(1000, args.first)),
            ...(args.after ? { cursor: args.after } : {}),
            ...(state ? { state } : {}),
          })
          return pageOf(result.items, result.nextCursor)
        },
      },
      Subscription: {
        deletionUpdated: {
          // Checks the caller may see the request (the same 404 as REST otherwise), then streams it.
          subscribe: async (_root: unknown, args: { id: string }, ctx: MercuriusContext) => {
            await deletions().get(ctx.principal, args.id)
            return ctx.pubsub.subscribe(deletionTopic(args.id))
          },
        },
      },
      Mutation: {
        planDeletion: (_root: unknown, args: { input: CreateDeletionInput }, ctx: MercuriusContext) =>
          deletions().plan(ctx.principal, contextOf(ctx), args.input),
        createDeletion: (
          _root: unknown,
          args: { input: CreateDeletionInput; idempotencyKey?: string },
          ctx: MercuriusContext,
        ) => deletions().create(ctx.principal, contextOf(ctx), args.input, args.idempotencyKey ?? undefined),
        decideDeletion: (
          _root: unknown,
          args: { id: string; decision: 'approve' | 'reject'; comment?: string; planHash?: string },
          ctx: MercuriusContext,
        ) =>
          deletions().decide(ctx.principal, contextOf(ctx), args.id, {
            decision: args.decision,
            ...(args.comment ? { comment: args.comment } : {}),
            ...(args.planHash ? { planHash: args.planHash } : {}),
          }),
        cancelDeletion: (_root: unknown, args: { id: string; reason?: string }, ctx: MercuriusContext) =>
          deletions().cancel(ctx.principal, contextOf(ctx), args.id, args.reason ?? undefined),
        retryDeletion: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          deletions().retry(ctx.principal, contextOf(ctx), args.id),
        restoreDeletion: (_root: unknown, args: { id: string; force?: boolean }, ctx: MercuriusContext) =>
          deletions().restore(ctx.principal, contextOf(ctx), args.id, {
            force: args.force === true,
          }),
        replanDeletion: (
          _root: unknown,
          args: { id: string; idempotencyKey?: string },
          ctx: MercuriusContext,
        ) => deletions().replan(ctx.principal, contextOf(ctx), args.id, args.idempotencyKey ?? undefined),
      },
    },
  }
}
