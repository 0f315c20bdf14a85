import { Type } from 'typebox'
import { UsageLocationSchema } from '../usage/schemas.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()])

export const TargetSchema = Type.Object(
  {
    repository: Type.String({ minLength: 1, maxLength: 255 }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    digest: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    tagPattern: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1000,
        description: 'A glob (`pr-*`) or an anchored regex `/…/`',
      }),
    ),
  },
  { additionalProperties: false, description: 'A repository with exactly one of tag, digest or tagPattern' },
)

export const VerbSchema = Type.Union([
  Type.Literal('untag'),
  Type.Literal('delete-manifest'),
  Type.Literal('delete-image'),
])

export const CreateDeletionSchema = Type.Object(
  {
    registry: Type.String({ minLength: 1 }),
    verb: VerbSchema,
    targets: Type.Array(TargetSchema, { minItems: 1, maxItems: 500 }),
    reason: Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S' }),
    ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    dryRun: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
)

const ProtectionSchema = Type.Object({
  level: Type.Union([
    Type.Literal('none'),
    Type.Literal('admin-only'),
    Type.Literal('immutable'),
    Type.Literal('held'),
  ]),
  rule: Type.Optional(Type.String()),
  tag: Type.Optional(Type.String()),
})

export const PlanItemSchema = Type.Object({
  repository: Type.String(),
  tag: Nullable(Type.String()),
  digest: Type.String(),
  mediaType: Type.String(),
  action: Type.Union([
    Type.Literal('untag'),
    Type.Literal('delete-manifest'),
    Type.Literal('delete-child'),
    Type.Literal('delete-referrer'),
  ]),
  vanishingTags: Type.Array(Type.String(), {
    description: 'Every tag that no longer resolves once this item is done',
  }),
  untagMethod: Type.Optional(
    Type.Union([Type.Literal('tag-delete'), Type.Literal('placeholder'), Type.Literal('impossible')]),
  ),
  bytes: Type.Integer(),
  protection: ProtectionSchema,
  note: Type.Optional(Type.String()),
  dangling: Type.Optional(
    Type.Boolean({
      description:
        'The registry lists the tag but it resolves to nothing; `digest` is the placeholder pushed onto it to remove it',
    }),
  ),
  inUse: Type.Optional(
    Type.Object(
      {
        status: Type.Union([Type.Literal('in-use'), Type.Literal('unknown')]),
        reason: Type.String({ description: 'One line: "running in prod/payments deploy/api, 3 pods"' }),
        policy: Type.Union([Type.Literal('refuse'), Type.Literal('admin-only'), Type.Literal('warn')]),
        where: Type.Array(UsageLocationSchema, { description: 'The places, strongest first (at most ten)' }),
      },
      { description: 'Something runs or names what this item deletes (or its usage is unknown)' },
    ),
  ),
})

export const KeptManifestSchema = Type.Object({
  repository: Type.String(),
  digest: Type.String(),
  tags: Type.Array(Type.String()),
  reason: Type.String(),
})

export const ApprovalRequirementSchema = Type.Object({
  count: Type.Integer(),
  from: Type.Array(Type.String()),
  adminCount: Type.Integer(),
  reasons: Type.Array(Type.String()),
})

export const PlanSchema = Type.Object(
  {
    registry: Type.String(),
    verb: VerbSchema,
    items: Type.Array(PlanItemSchema),
    problems: Type.Array(Type.Object({ code: Type.String(), message: Type.String() })),
    warnings: Type.Array(Type.String()),
    kept: Type.Optional(
      Type.Array(KeptManifestSchema, {
        description:
          'What the request reaches but leaves alone, and why (an index child with tags of its own)',
      }),
    ),
    bytesFreed: Type.Integer(),
    repositories: Type.Array(
      Type.Object({
        repository: Type.String(),
        totalTags: Type.Integer(),
        itemsInRepo: Type.Integer(),
        owningTeams: Type.Array(Type.String()),
      }),
    ),
    approvals: ApprovalRequirementSchema,
    hash: Type.String(),
  },
  { $id: 'Plan', title: 'Plan' },
)

export const DeletionSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    registry: Type.String(),
    verb: VerbSchema,
    state: Type.String(),
    reason: Type.String(),
    ticket: Nullable(Type.String()),
    requester: Type.Object({
      subject: Type.String(),
      onBehalfOf: Nullable(Type.String()),
      person: Type.String(),
    }),
    targets: Type.Array(TargetSchema),
    plan: Type.Ref('Plan'),
    planHash: Type.String(),
    approvals: Type.Object({
      required: ApprovalRequirementSchema,
      missing: Type.Integer(),
      missingAdmins: Type.Integer(),
      given: Type.Array(
        Type.Object({
          approver: Type.String(),
          as: Type.String(),
          decision: Type.String(),
          comment: Nullable(Type.String()),
          at: Type.String(),
        }),
      ),
    }),
    progress: Type.Object({
      total: Type.Integer(),
      pending: Type.Integer(),
      deleted: Type.Integer(),
      skipped: Type.Integer(),
      failed: Type.Integer(),
    }),
    planChanged: Type.Integer({
      description:
        'Items not executed because the registry, the holds or the protections changed since approval so that executing them would go beyond the approved plan',
    }),
    replanOf: Nullable(Type.String({ description: 'The request this one was filed again from' })),
    view: Type.Union([Type.Literal('full'), Type.Literal('summary')], {
      description: '`summary`: the plan’s items are left out; page through GET /v1/deletions/{id}/items',
    }),
    jobId: Nullable(Type.String({ description: 'The execution job (GET /v1/jobs/{id})' })),
    expiresAt: Nullable(Type.String()),
    createdAt: Type.String(),
    updatedAt: Type.String(),
    summary: Type.String({ description: 'One line a chat bot can post as it is' }),
  },
  { $id: 'Deletion', title: 'Deletion' },
)

export const DryRunSchema = Type.Object({
  dryRun: Type.Literal(true),
  plan: Type.Ref('Plan'),
  summary: Type.String(),
})

export const DeletionIdParamsSchema = Type.Object({ id: Type.String({ format: 'uuid' }) })

export const DeletionViewQuerySchema = Type.Object({
  view: Type.Union([Type.Literal('full'), Type.Literal('summary')], {
    default: 'full',
    description: '`summary` leaves the plan’s items out: cheap to poll',
  }),
})

export const ItemStateSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('deleted'),
  Type.Literal('skipped'),
  Type.Literal('failed'),
])

export const DeletionItemsQuerySchema = Type.Object({
  state: Type.Optional(ItemStateSchema),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 2048 })),
})

export const DeletionItemSchema = Type.Object(
  {
    position: Type.Integer(),
    repository: Type.String(),
    tag: Nullable(Type.String()),
    digest: Type.String(),
    mediaType: Type.String(),
    action: Type.String(),
    vanishingTags: Type.Array(Type.String()),
    state: ItemStateSchema,
    outcome: Nullable(
      Type.String({
        description:
          'deleted, already_deleted, tag_moved, tag_gone, plan_changed (the registry changed since approval: see error), dangling, not_found, gave_up, …',
      }),
    ),
    errorCode: Nullable(Type.String()),
    error: Nullable(Type.String()),
    attempts: Type.Integer(),
    restorable: Type.Boolean(),
    restoreOutcome: Nullable(
      Type.String({ description: 'restored, tag_taken (a tag was pushed again since: left alone), forced' }),
    ),
    restoreNote: Nullable(Type.String()),
    verifiedAt: Nullable(Type.String({ description: 'When the verification that cleared the DELETE began' })),
    deleteIssuedAt: Nullable(Type.String({ description: 'When the DELETE left Regent' })),
    finishedAt: Nullable(Type.String()),
  },
  { $id: 'DeletionItem', title: 'DeletionItem' },
)

export const RestoreQuerySchema = Type.Object({
  force: Type.Optional(
    Type.Boolean({
      description:
        'Admins only: also re-point tags that were pushed again since the deletion (default false)',
    }),
  ),
})
export const DeletionListQuerySchema = Type.Object({
  state: Type.Optional(Type.String()),
  registry: Type.Optional(Type.String()),
  requester: Type.Optional(Type.String()),
  awaitingMyApproval: Type.Optional(
    Type.Boolean({
      description:
        'Only requests the caller may approve now (an eligible approver, never the requester) and has not decided on',
    }),
  ),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 2048 })),
})

export const DecisionSchema = Type.Object(
  {
    decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
    planHash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'The plan you reviewed' })),
  },
  { additionalProperties: false },
)

export const CancelSchema = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false },
)

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' }),
  ),
})

const ActionVerdictSchema = Type.Object({
  allowed: Type.Boolean(),
  reason: Nullable(Type.String({ description: 'Why not, when not allowed' })),
})

export const DeletionActionsSchema = Type.Object({
  approve: ActionVerdictSchema,
  reject: ActionVerdictSchema,
  cancel: ActionVerdictSchema,
  retry: ActionVerdictSchema,
  restore: ActionVerdictSchema,
  replan: ActionVerdictSchema,
})
