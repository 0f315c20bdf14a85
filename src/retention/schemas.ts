import { Type } from 'typebox'
import { validated } from '../lib/validate.js'
import type { PolicyInput } from './policies.js'

/** REST shapes of retention policies, previews and runs (the rule language: rules.ts). */

const TimeBasis = Type.Union([Type.Literal('push'), Type.Literal('created'), Type.Literal('pull')], {
  description:
    '`push` (registry events, else when Regent first saw the tag), `created` (image config), `pull` (events)',
})
const Age = Type.String({
  pattern: '^\\d{1,6}[smhdw]$',
  description: 'A duration: `45s`, `30m`, `12h`, `14d`, `2w`',
})
const Count = Type.Integer({ minimum: 0, maximum: 100000 })
const Patterns = Type.Array(Type.String({ minLength: 1, maxLength: 1000 }), { maxItems: 50 })

export const SelectionSchema = Type.Object(
  {
    tagStatus: Type.Optional(
      Type.Union([Type.Literal('tagged'), Type.Literal('untagged'), Type.Literal('any')], {
        default: 'tagged',
      }),
    ),
    include: Type.Optional(Patterns),
    exclude: Type.Optional(Patterns),
    matchAll: Type.Optional(
      Type.Boolean({ description: 'Every include pattern must match one of the tags (ECR)' }),
    ),
  },
  { additionalProperties: false },
)

// Condition branches stay open (no additionalProperties: false): Fastify's Ajv removes additional
// properties while it tries each anyOf branch, which would strip the branch that matches later.
// Exactly one key each instead.
const one = { minProperties: 1, maxProperties: 1 }
const Always = Type.Object({ always: Type.Literal(true) }, one)
const KeepSchema = Type.Union([
  Always,
  Type.Object(
    { mostRecent: Type.Object({ count: Count, by: TimeBasis }, { additionalProperties: false }) },
    one,
  ),
  Type.Object({ within: Type.Object({ age: Age, by: TimeBasis }, { additionalProperties: false }) }, one),
])
const ExpireSchema = Type.Union([
  Always,
  Type.Object({ olderThan: Type.Object({ age: Age, by: TimeBasis }, { additionalProperties: false }) }, one),
  Type.Object(
    { beyondCount: Type.Object({ count: Count, by: TimeBasis }, { additionalProperties: false }) },
    one,
  ),
])

export const RuleSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 200 })),
    select: Type.Optional(SelectionSchema),
    keep: Type.Optional(KeepSchema),
    expire: Type.Optional(ExpireSchema),
  },
  { additionalProperties: false, description: 'Exactly one of keep or expire' },
)

const GuardsSchema = Type.Object(
  {
    maxShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxCount: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false, description: 'Stricter limits than the configured `retention.guards`' },
)

export const PolicyInputSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,99}$' }),
    team: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()], {
        description: 'The owning team (its repositories only); null or absent: a global policy (admins)',
      }),
    ),
    registry: Type.String({ minLength: 1 }),
    repositories: Type.Array(Type.String({ minLength: 1, maxLength: 1000 }), {
      minItems: 1,
      maxItems: 50,
      description: 'Repository globs, e.g. `payments/**`',
    }),
    rules: Type.Array(RuleSchema, { maxItems: 50, description: 'In priority order' }),
    default: Type.Optional(
      Type.Union([Type.Literal('keep'), Type.Literal('expire')], {
        default: 'keep',
        description: 'For artifacts no rule decides: `keep` (ECR, GitLab) or `expire` (Harbor)',
      }),
    ),
    schedule: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
    mode: Type.Optional(
      Type.Union([Type.Literal('propose'), Type.Literal('auto')], {
        default: 'propose',
        description:
          '`propose`: files a request a person must approve; `auto`: pre-approved where the team’s approval rules need none',
      }),
    ),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    guards: Type.Optional(GuardsSchema),
  },
  { additionalProperties: false },
)

export const PolicySchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    team: Type.Union([Type.String(), Type.Null()]),
    registry: Type.String(),
    repositories: Type.Array(Type.String()),
    rules: Type.Array(RuleSchema),
    default: Type.Union([Type.Literal('keep'), Type.Literal('expire')]),
    schedule: Type.Union([Type.String(), Type.Null()]),
    mode: Type.Union([Type.Literal('propose'), Type.Literal('auto')]),
    enabled: Type.Boolean(),
    guards: GuardsSchema,
    version: Type.Integer(),
    createdBy: Type.String(),
    updatedBy: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'RetentionPolicy' },
)

const CountsSchema = Type.Object({
  repositories: Type.Integer(),
  artifacts: Type.Integer(),
  tags: Type.Integer(),
  expiredArtifacts: Type.Integer(),
  expiredTags: Type.Integer(),
  keptInUse: Type.Optional(
    Type.Integer({ description: 'Artifacts the rules would expire that are kept because they are in use' }),
  ),
  bytes: Type.Number({ description: 'Bytes of blobs only expired manifests use (freed by the next GC)' }),
})

const ExpiredSchema = Type.Object({
  repository: Type.String(),
  digest: Type.String(),
  tags: Type.Array(Type.String()),
})

const GuardSchema = Type.Object({
  tripped: Type.Boolean(),
  reasons: Type.Array(Type.String()),
  limits: Type.Object({ maxShare: Type.Number(), maxCount: Type.Integer() }),
  keptInUse: Type.Optional(Type.Integer({ description: 'Manifests held back because they are in use' })),
})

const DiffSchema = Type.Object({
  against: Type.Union([
    Type.Object({ id: Type.String(), kind: Type.String(), createdAt: Type.String({ format: 'date-time' }) }),
    Type.Null(),
  ]),
  newlyExpired: Type.Array(ExpiredSchema),
  noLongerExpired: Type.Array(ExpiredSchema),
})

export const PreviewSchema = Type.Object(
  {
    id: Type.Union([Type.String(), Type.Null()], {
      description: 'The stored preview; null for an unsaved policy',
    }),
    evaluatedAt: Type.String({ format: 'date-time' }),
    counts: CountsSchema,
    verdicts: Type.Array(
      Type.Object({
        repository: Type.String(),
        tag: Type.Union([Type.String(), Type.Null()]),
        digest: Type.String(),
        verdict: Type.Union([Type.Literal('keep'), Type.Literal('expire')]),
        decidedBy: Type.String(),
        fact: Type.String(),
        timeSources: Type.Object({ push: Type.String(), pull: Type.String() }),
      }),
    ),
    repositories: Type.Array(
      Type.Object({
        repository: Type.String(),
        totalTags: Type.Integer(),
        expiredTags: Type.Integer(),
        keptInUse: Type.Integer(),
        bytes: Type.Number(),
        error: Type.Optional(Type.String()),
      }),
    ),
    guard: GuardSchema,
    diff: DiffSchema,
    summary: Type.String(),
  },
  { $id: 'RetentionPreview' },
)

export const RunSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    policyId: Type.String({ format: 'uuid' }),
    policyVersion: Type.Integer(),
    trigger: Type.String(),
    slot: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    state: Type.String({
      description: 'queued, running, nothing, guarded (stopped for an admin), proposed, executing, failed',
    }),
    requestedBy: Type.String(),
    overrideGuards: Type.Boolean(),
    counts: Type.Union([CountsSchema, Type.Null()]),
    expired: Type.Union([Type.Array(ExpiredSchema), Type.Null()]),
    guard: Type.Union([GuardSchema, Type.Null()]),
    deletionId: Type.Union([Type.String(), Type.Null()]),
    jobId: Type.Union([Type.String(), Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    summary: Type.String(),
  },
  { $id: 'RetentionRun' },
)

export const PolicyParamsSchema = Type.Object({ id: Type.String({ format: 'uuid' }) })
export const RunParamsSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  runId: Type.String({ format: 'uuid' }),
})
export const RunRequestSchema = Type.Object(
  {
    overrideGuards: Type.Optional(
      Type.Boolean({
        description: 'Admins only: proceed past the blast-radius guards (approvals still apply)',
      }),
    ),
  },
  { additionalProperties: false },
)

/** A policy document from GraphQL's JSON input: the REST body's schema, with the same 400. */
export function parsePolicyInput(input: unknown): PolicyInput {
  return validated(PolicyInputSchema, input) as PolicyInput
}
