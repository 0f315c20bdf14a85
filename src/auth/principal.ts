/**
 * Who is asking. Built once per request from the verified token (REST, GraphQL and chatops share it)
 * and passed to every feature service, which decides what the principal may do.
 */
export const ROLES = ['viewer', 'requester', 'approver', 'admin', 'bot'] as const
export type Role = (typeof ROLES)[number]

export interface Principal {
  /** The token's `sub`: a person, or a bot's own identity. */
  subject: string
  /** Set when a bot acts for a person (`X-Regent-On-Behalf-Of`); audit events record both. */
  onBehalfOf?: string
  teams: string[]
  roles: Role[]
  /** How the call arrived: `api` (REST/GraphQL), `slack`, `policy`, `system`. */
  channel: 'api' | 'slack' | 'policy' | 'system'
}

/** Where a request came from, for the audit log. */
export interface RequestContext {
  requestId: string
  sourceIp?: string
  userAgent?: string
}

/** The person a decision is about: the one a bot acts for, else the caller. */
export function personOf(principal: Principal): string {
  return principal.onBehalfOf ?? principal.subject
}

export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.includes(role) || principal.roles.includes('admin')
}

export function isAdmin(principal: Principal): boolean {
  return principal.roles.includes('admin')
}
