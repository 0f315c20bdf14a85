import type { MercuriusContext } from 'mercurius'
import type { AuditService } from '../audit/service.js'
import type { RequestContext } from '../auth/principal.js'
import { errors } from '../errors.js'
import type { HoldsService, PlaceHoldInput } from '../governance/holds-service.js'
import type { GraphqlModule } from '../graphql/plugin.js'
import type { CreateDeletionInput, DeletionService } from './service.js'
import type { DeletionState } from './state-machine.js'

/**
 * Deletions, legal holds and the audit log as a graph: the same services as REST, so the same
 * plans, the same authorization, the same audit events and the same REGENT_* codes.
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
    legalHolds(includeEnded: Boolean = false): [LegalHold!]!
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
  extend type Subscription {
    "The request each time its state or progress changes (from any replica's worker)."
    deletionUpdated(id: ID!): Deletion!
  }
  type Mutation {
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
    placeLegalHold(input: LegalHoldInput!): LegalHold!
    liftLegalHold(id: ID!): LegalHold!
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
  input LegalHoldInput {
    registry: String
    repository: String!
    digest: String
    reason: String!
    until: String!
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

export const deletionTopic = (id: string) => `deletion:${id}`

const ITEM_STATES = ['pending', 'deleted', 'skipped', 'failed'] as const

interface Services {
  deletions: DeletionService
  holds: HoldsService
  audit: AuditService
}

/** The same audit context REST records: request id, source IP, user agent. */
const contextOf = (ctx: MercuriusContext): RequestContext => ({
  requestId: ctx.requestId,
  sourceIp: ctx.sourceIp,
  ...(ctx.userAgent ? { userAgent: ctx.userAgent } : {}),
})
const page = <T>(items: T[], nextCursor: string | null) => ({
  nodes: items,
  pageInfo: { hasNextPage: nextCursor !== null, endCursor: nextCursor },
})

export function deletionsGraphql(services: () => Services): GraphqlModule {
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
          const result = await services().deletions.list(
            ctx.principal,
            {
              ...(args.state ? { state: args.state as DeletionState } : {}),
              ...(args.registry ? { registry: args.registry } : {}),
              ...(args.requester ? { requester: args.requester } : {}),
              ...(args.awaitingMyApproval ? { awaitingMyApproval: true } : {}),
            },
            { limit: Math.max(1, Math.min(200, args.first)), ...(args.after ? { cursor: args.after } : {}) },
          )
          return page(result.items, result.nextCursor)
        },
        deletion: (_root: unknown, args: { id: string; view?: string }, ctx: MercuriusContext) =>
          services().deletions.get(ctx.principal, args.id, args.view === 'summary' ? 'summary' : 'full'),
        legalHolds: (_root: unknown, args: { includeEnded: boolean }, ctx: MercuriusContext) =>
          services().holds.list(ctx.principal, args.includeEnded),
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
          const result = await services().audit.list(ctx.principal, defined, {
            limit: Math.max(1, Math.min(500, first)),
            ...(after ? { cursor: after } : {}),
          })
          return page(
            result.events.map((e) => ({ ...e, details: JSON.stringify(e.details) })),
            result.nextCursor,
          )
        },
        auditVerification: (_root: unknown, _args: unknown, ctx: MercuriusContext) =>
          services().audit.verify(ctx.principal),
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
          const result = await services().deletions.items(ctx.principal, deletion.id, {
            limit: Math.max(1, Math.min(1000, args.first)),
            ...(args.after ? { cursor: args.after } : {}),
            ...(state ? { state } : {}),
          })
          return page(result.items, result.nextCursor)
        },
      },
      Subscription: {
        deletionUpdated: {
          // Checks the caller may see the request (the same 404 as REST otherwise), then streams it.
          subscribe: async (_root: unknown, args: { id: string }, ctx: MercuriusContext) => {
            await services().deletions.get(ctx.principal, args.id)
            return ctx.pubsub.subscribe(deletionTopic(args.id))
          },
        },
      },
      Mutation: {
        planDeletion: (_root: unknown, args: { input: CreateDeletionInput }, ctx: MercuriusContext) =>
          services().deletions.plan(ctx.principal, contextOf(ctx), args.input),
        createDeletion: (
          _root: unknown,
          args: { input: CreateDeletionInput; idempotencyKey?: string },
          ctx: MercuriusContext,
        ) =>
          services().deletions.create(
            ctx.principal,
            contextOf(ctx),
            args.input,
            args.idempotencyKey ?? undefined,
          ),
        decideDeletion: (
          _root: unknown,
          args: { id: string; decision: 'approve' | 'reject'; comment?: string; planHash?: string },
          ctx: MercuriusContext,
        ) =>
          services().deletions.decide(ctx.principal, contextOf(ctx), args.id, {
            decision: args.decision,
            ...(args.comment ? { comment: args.comment } : {}),
            ...(args.planHash ? { planHash: args.planHash } : {}),
          }),
        cancelDeletion: (_root: unknown, args: { id: string; reason?: string }, ctx: MercuriusContext) =>
          services().deletions.cancel(ctx.principal, contextOf(ctx), args.id, args.reason ?? undefined),
        retryDeletion: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          services().deletions.retry(ctx.principal, contextOf(ctx), args.id),
        restoreDeletion: (_root: unknown, args: { id: string; force?: boolean }, ctx: MercuriusContext) =>
          services().deletions.restore(ctx.principal, contextOf(ctx), args.id, {
            force: args.force === true,
          }),
        replanDeletion: (
          _root: unknown,
          args: { id: string; idempotencyKey?: string },
          ctx: MercuriusContext,
        ) =>
          services().deletions.replan(
            ctx.principal,
            contextOf(ctx),
            args.id,
            args.idempotencyKey ?? undefined,
          ),
        placeLegalHold: (_root: unknown, args: { input: PlaceHoldInput }, ctx: MercuriusContext) =>
          services().holds.place(ctx.principal, contextOf(ctx), args.input),
        liftLegalHold: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          services().holds.lift(ctx.principal, contextOf(ctx), args.id),
      },
    },
  }
}
