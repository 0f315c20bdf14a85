import { isAdmin, type Principal, personOf } from '../auth/principal.js'
import { errors } from '../errors.js'
import { mayApprove } from '../governance/index.js'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'
import { decodeKeyset, type KeysetRow, keysetPage } from '../lib/paging.js'
/** Reading requests: one, its items, lists and the approval inbox, and what a caller may do. */
import {
  type DeletionActions,
  DeletionCore,
  type DeletionListFilters,
  INBOX_BATCH,
  mayRestore,
  REPLANNABLE,
  requesterOrAdmin,
  UUID,
  verdict,
  visible,
} from './core.js'
import { type ItemState, pageOfItems } from './items-sql.js'
import {
  type DeletionFilters,
  type DeletionRow,
  getDeletion,
  getDeletionSummary,
  listApprovals,
  listDeletions,
} from './sql.js'
import { canTransition } from './state-machine.js'
import { type DeletionItemView, type DeletionView, toItemView } from './views.js'

/** Whether this approval row is the caller's: the same person, or the same credential. */
function decidedBy(
  principal: Principal,
  approval: { approver_person: string; approver_subject: string },
): boolean {
  return approval.approver_person === personOf(principal) || approval.approver_subject === principal.subject
}

function mayApproveRow(principal: Principal, row: DeletionRow) {
  return mayApprove(
    principal,
    row.requester_person,
    row.approval_requirement,
    row.owning_teams,
    row.requester_subject,
  )
}

/**
 * Reading requests as the caller may see them: one request, its items page by page, what the
 * caller may do with it now and why not, lists with filters, and the approval inbox.
 */
export class DeletionQueries extends DeletionCore {
  /** `summary` leaves the plan's items out: cheap enough to poll (page through `items` instead). */
  async get(principal: Principal, id: string, view: 'full' | 'summary' = 'full'): Promise<DeletionView> {
    if (view === 'full') return this.view(await this.visibleRow(principal, id))
    const row = await getDeletionSummary(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    return this.view(row)
  }

  /** Whether the caller may see the request (what `get` answers 404 for). */
  async isVisible(principal: Principal, id: string): Promise<boolean> {
    if (!UUID.test(id)) return false
    const row = await getDeletion(this.pool, id)
    return row !== undefined && visible(principal, row)
  }

  /** A request's items with what execution did to each, in plan order, a page at a time. */
  async items(
    principal: Principal,
    id: string,
    page: { limit: number; cursor?: string; state?: ItemState },
  ): Promise<{ items: DeletionItemView[]; nextCursor: string | null }> {
    await this.visibleRow(principal, id)
    const after = decodeCursor(page.cursor, ['position'])?.position
    const rows = await pageOfItems(this.pool, id, {
      afterPosition: after === undefined ? -1 : Number(after),
      limit: page.limit + 1,
      ...(page.state ? { state: page.state } : {}),
    })
    const pageRows = rows.slice(0, page.limit)
    const last = pageRows.at(-1)
    return {
      items: pageRows.map(toItemView),
      nextCursor: rows.length > page.limit && last ? encodeCursor({ position: String(last.position) }) : null,
    }
  }

  /**
   * What the caller may do with the request now, by the same rules `decide`, `cancel`, `retry`
   * and `restore` enforce, so a user interface offers only what would be accepted.
   */
  async actions(principal: Principal, id: string): Promise<DeletionActions> {
    const row = await getDeletion(this.pool, id)
    if (!row || !visible(principal, row)) throw new errors.DELETION_NOT_FOUND(id)
    // Decided: this person, or this credential relaying for someone else (a token counts once).
    const decided = (await listApprovals(this.pool, [id])).some((a) => decidedBy(principal, a))
    const state = row.state.replace('_', ' ')
    const decision = verdict(() => {
      if (row.state !== 'awaiting_approval') return `the request is ${state}`
      if (row.expires_at && row.expires_at <= new Date()) return 'the approval window has closed'
      if (decided) return 'you have already decided on this request'
      const eligible = mayApproveRow(principal, row)
      return eligible.ok ? null : eligible.message
    })
    const ownerOnly = (what: string, allowed: boolean) =>
      verdict(() => {
        if (!requesterOrAdmin(principal, row)) return `only the requester or an admin may ${what} a request`
        return allowed ? null : `a ${state} request cannot be ${what === 'retry' ? 'retried' : 'cancelled'}`
      })
    const restore = verdict(() => {
      if (!mayRestore(principal, row)) return 'restoring needs an admin or an approver of the owning team'
      if (!canTransition(row.state, 'restored')) return `a ${state} request cannot be restored`
      return null
    })
    return {
      approve: decision,
      reject: decision,
      cancel: ownerOnly('cancel', canTransition(row.state, 'cancelled')),
      retry: ownerOnly('retry', row.state === 'failed' || row.state === 'partially_failed'),
      restore,
      replan: verdict(() => {
        if (!requesterOrAdmin(principal, row))
          return 'only the requester or an admin may file a request again'
        return REPLANNABLE.has(row.state) ? null : `a ${state} request is not filed again`
      }),
    }
  }

  async list(
    principal: Principal,
    filters: DeletionListFilters,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: DeletionView[]; nextCursor: string | null }> {
    if (principal.roles.length === 0)
      throw new errors.FORBIDDEN('listing deletions needs at least the viewer role')
    const { awaitingMyApproval, ...sqlFilters } = filters
    if (awaitingMyApproval) return this.awaitingApprovalBy(principal, sqlFilters, page)
    const after = decodeKeyset(page.cursor)
    const rows = await listDeletions(
      this.pool,
      sqlFilters,
      isAdmin(principal) ? null : { person: personOf(principal), teams: principal.teams },
      { limit: page.limit + 1, ...(after ? { after } : {}) },
    )
    return this.page(rows, page.limit)
  }

  /**
   * The caller's inbox: requests awaiting approval that `mayApprove` lets them decide (never their
   * own), not expired, and not decided by them yet, newest first. Eligibility is not SQL, so rows
   * are read in rounds and filtered until the page is full; the cursor is the last row returned.
   */
  protected async awaitingApprovalBy(
    principal: Principal,
    filters: DeletionFilters,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: DeletionView[]; nextCursor: string | null }> {
    if (filters.state && filters.state !== 'awaiting_approval') return { items: [], nextCursor: null }
    const me = personOf(principal)
    const visibleTo = isAdmin(principal) ? null : { person: me, teams: principal.teams }
    let after = decodeKeyset(page.cursor)
    const found: (DeletionRow & KeysetRow)[] = []
    const now = new Date()
    while (found.length <= page.limit) {
      const batch = await listDeletions(this.pool, { ...filters, state: 'awaiting_approval' }, visibleTo, {
        limit: INBOX_BATCH,
        ...(after ? { after } : {}),
      })
      const approvals = await listApprovals(
        this.pool,
        batch.map((row) => row.id),
      )
      const decided = new Set(approvals.filter((a) => decidedBy(principal, a)).map((a) => a.deletion_id))
      for (const row of batch) {
        if (decided.has(row.id) || (row.expires_at && row.expires_at <= now)) continue
        const eligible = mayApproveRow(principal, row)
        if (!eligible.ok) continue
        found.push(row)
        if (found.length > page.limit) break
      }
      const last = batch.at(-1)
      if (batch.length < INBOX_BATCH || !last) break
      after = { createdAt: last.created_key, id: last.id }
    }
    return this.page(found, page.limit)
  }

  /** One page of views from up to `limit + 1` rows: the extra row only says there is more. */
  protected async page(rows: (DeletionRow & KeysetRow)[], limit: number) {
    const shown = keysetPage(rows, limit)
    return { items: await this.views(shown.rows), nextCursor: shown.nextCursor }
  }
}
