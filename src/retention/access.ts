import { hasRole, isAdmin, type Principal } from '../auth/principal.js'
import { errors } from '../errors.js'
import type { PolicyRow } from './sql.js'

/**
 * Who may do what with retention policies: anyone with a role reads them; a team's policies are
 * managed by its approvers and previewed by its members; global policies are admins'. A run acts as
 * the policy itself.
 */

export function requireViewer(principal: Principal): void {
  if (principal.roles.length === 0)
    throw new errors.FORBIDDEN('retention policies need at least the viewer role')
}

/** Admins manage every policy; a team's approvers manage that team's. */
export function requireManager(principal: Principal, team: string | null): void {
  if (isAdmin(principal)) return
  if (!team) throw new errors.FORBIDDEN('global retention policies are managed by admins')
  if (!principal.teams.includes(team) || !hasRole(principal, 'approver'))
    throw new errors.FORBIDDEN(`retention policies of ${team} are managed by its approvers and admins`)
}

/**
 * A preview evaluates every repository of the policy (registry calls, and a stored run row for a
 * saved policy): it is for the policy's own team, and a global policy's for admins.
 */
export function requireTeamViewer(principal: Principal, team: string | null): void {
  if (seesTeam(principal, team)) return
  throw new errors.FORBIDDEN(
    team
      ? `previews of ${team}'s retention policies are for its members`
      : 'previews of global retention policies are for admins',
  )
}

/** A team's policy is its members' (with any role); a global policy is admins'. */
export function seesTeam(principal: Principal, team: string | null): boolean {
  if (isAdmin(principal)) return true
  return team !== null && principal.roles.length > 0 && principal.teams.includes(team)
}

/** Who a run acts as: the policy itself, within its team (a global policy as an admin). */
export function policyPrincipal(policy: Pick<PolicyRow, 'name' | 'team'>): Principal {
  return {
    subject: `policy:${policy.name}`,
    teams: policy.team ? [policy.team] : [],
    roles: policy.team ? ['requester'] : ['admin'],
    channel: 'policy',
  }
}
