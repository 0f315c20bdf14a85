import type pg from 'pg'
import { type Static, Type } from 'typebox'
import { appendAuditEvent, auditActor } from '../audit/index.js'
import { isAdmin, type Principal, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { globProblem } from '../governance/globs.js'
import { validated } from '../lib/validate.js'
import { type HoldRow, insertHold, liftHold, listHolds, lockHoldsForPlacing } from './sql.js'

export interface HoldView {
  id: string
  registry: string
  repository: string
  digest: string | null
  reason: string
  until: string
  createdBy: string
  createdAt: string
  liftedAt: string | null
  liftedBy: string | null
  active: boolean
}

export const PlaceHoldSchema = Type.Object(
  {
    registry: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'Registry name glob (default `*`)' }),
    ),
    repository: Type.String({
      minLength: 1,
      maxLength: 1000,
      description: 'Repository glob, e.g. `payments/**`',
    }),
    digest: Type.Optional(Type.String({ pattern: '^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$' })),
    reason: Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S' }),
    until: Type.String({ format: 'date-time', description: 'When the hold ends by itself' }),
  },
  { additionalProperties: false },
)

export type PlaceHoldInput = Static<typeof PlaceHoldSchema>

/** Legal holds: time-boxed, override every policy, placed and lifted by admins, audited. */
export class HoldsService {
  constructor(private readonly pool: pg.Pool) {}

  async place(principal: Principal, context: RequestContext, given: PlaceHoldInput): Promise<HoldView> {
    if (!isAdmin(principal)) throw new errors.FORBIDDEN('legal holds are placed by admins')
    const input = validated(PlaceHoldSchema, given)
    const registry = input.registry ?? '*'
    for (const [key, glob] of [
      ['registry', registry],
      ['repository', input.repository],
    ] as const) {
      const problem = globProblem(glob)
      if (problem) throw new errors.VALIDATION(`${key}: ${problem}`)
    }
    const until = new Date(input.until)
    if (Number.isNaN(until.getTime()) || until.getTime() <= Date.now()) {
      throw new errors.VALIDATION('until must be a time in the future')
    }
    const row = await withTransaction(this.pool, async (client) => {
      await lockHoldsForPlacing(client)
      const hold = await insertHold(client, {
        registry,
        repository: input.repository,
        digest: input.digest ?? null,
        reason: input.reason,
        until,
        createdBy: principal.subject,
      })
      await appendAuditEvent(client, {
        ...auditActor(principal, context),
        action: 'legal_hold.placed',
        outcome: 'placed',
        registry,
        repository: input.repository,
        digest: input.digest ?? null,
        details: { holdId: hold.id, reason: input.reason, until: until.toISOString() },
      })
      return hold
    })
    return holdView(row)
  }

  async list(principal: Principal, includeEnded: boolean): Promise<HoldView[]> {
    if (principal.roles.length === 0) throw new errors.FORBIDDEN('needs at least the viewer role')
    return (await listHolds(this.pool, { includeEnded })).map(holdView)
  }

  async lift(principal: Principal, context: RequestContext, id: string): Promise<HoldView> {
    if (!isAdmin(principal)) throw new errors.FORBIDDEN('legal holds are lifted by admins')
    const row = await withTransaction(this.pool, async (client) => {
      const lifted = await liftHold(client, id, principal.subject)
      if (!lifted) throw new errors.HOLD_NOT_FOUND(id)
      await appendAuditEvent(client, {
        ...auditActor(principal, context),
        action: 'legal_hold.lifted',
        outcome: 'lifted',
        registry: lifted.registry,
        repository: lifted.repository,
        digest: lifted.digest,
        details: { holdId: lifted.id },
      })
      return lifted
    })
    return holdView(row)
  }
}

function holdView(row: HoldRow): HoldView {
  return {
    id: row.id,
    registry: row.registry,
    repository: row.repository,
    digest: row.digest,
    reason: row.reason,
    until: row.until.toISOString(),
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    liftedAt: row.lifted_at?.toISOString() ?? null,
    liftedBy: row.lifted_by,
    active: row.lifted_at === null && row.until.getTime() > Date.now(),
  }
}
