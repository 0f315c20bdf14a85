import type pg from 'pg'
import type { Principal } from '../auth/principal.js'
import { isAdmin } from '../auth/principal.js'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { owningTeams } from '../governance/index.js'
import { type AuditFilters, listAuditEvents, streamAuditEvents } from './queries.js'
import { verifyAuditChain } from './verify.js'

/**
 * Reading the audit log: admins read all of it; a viewer reads the events of one repository their
 * team owns (they must name registry and repository), or of one deletion request they may see
 * (`deletionId`: its requester, approvals and outcome, most of which name no repository).
 * REST and GraphQL both come through here.
 */
export class AuditService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly governance: Config['governance'],
    /** Whether the principal may see this deletion request (the deletions feature decides). */
    private readonly deletionVisible: (principal: Principal, id: string) => Promise<boolean> = async () =>
      false,
  ) {}

  async list(principal: Principal, filters: AuditFilters, page: { limit: number; cursor?: string }) {
    await this.authorizeRead(principal, filters)
    return listAuditEvents(this.pool, filters, page)
  }

  /** Authorizes first, so a refusal is an error answer rather than a broken stream. */
  async stream(principal: Principal, filters: AuditFilters) {
    await this.authorizeRead(principal, filters)
    return streamAuditEvents(this.pool, filters)
  }

  async verify(principal: Principal) {
    if (!isAdmin(principal)) throw new errors.FORBIDDEN('verifying the audit chain is for admins')
    return verifyAuditChain(this.pool)
  }

  private async authorizeRead(principal: Principal, filters: AuditFilters): Promise<void> {
    if (isAdmin(principal)) return
    if (principal.roles.length === 0)
      throw new errors.FORBIDDEN('reading the audit log needs the viewer role')
    if (filters.deletionId && !filters.repository) {
      if (!(await this.deletionVisible(principal, filters.deletionId)))
        throw new errors.FORBIDDEN(`deletion ${filters.deletionId} is not one of yours or your teams'`)
      return
    }
    if (!filters.registry || !filters.repository) {
      throw new errors.FORBIDDEN(
        'only admins read the whole audit log: name a registry and a repository your team owns, or a deletion you may see',
      )
    }
    const owners = owningTeams(this.governance, filters.registry, filters.repository)
    if (!owners.some((team) => principal.teams.includes(team))) {
      throw new errors.FORBIDDEN(`${filters.repository} is not owned by a team of yours`)
    }
  }
}
