import { hasRole, isAdmin, type Principal } from '../auth/principal.js'
import type { GovernanceConfig } from './config-schema.js'
import { matchesGlob } from './globs.js'

/** The teams whose repository patterns cover this repository of this registry, in config order. */
export function owningTeams(config: GovernanceConfig, registry: string, repository: string): string[] {
  return config.teams
    .filter((team) =>
      team.repositories.some(
        (entry) => matchesGlob(entry.registry, registry) && matchesGlob(entry.pattern, repository),
      ),
    )
    .map((team) => team.name)
}

export interface OwnedRepository {
  repository: string
  /** From `owningTeams`. */
  owningTeams: string[]
}

export type RequestEligibility =
  | { ok: true; as: 'admin' | 'owning-team-member' }
  | { ok: false; code: 'REGENT_REQUESTER_NOT_ELIGIBLE'; message: string }

/**
 * Whether the principal may request a deletion touching these repositories (every repository of
 * the plan, with its owning teams; the plan summary's `repositories` fit as they are). An admin
 * may always request. Anyone else needs the requester role and membership of an owning team of
 * every repository (not necessarily one team for all). A repository no team owns is admins' only.
 */
export function mayRequest(
  principal: Principal,
  repositories: readonly OwnedRepository[],
): RequestEligibility {
  if (isAdmin(principal)) return { ok: true, as: 'admin' }
  const refuse = (message: string) => ({ ok: false, code: 'REGENT_REQUESTER_NOT_ELIGIBLE', message }) as const
  if (!hasRole(principal, 'requester')) return refuse('requesting a deletion needs the requester role')
  if (repositories.length === 0) return refuse('the request names no repository')
  const memberOf = new Set(principal.teams)
  for (const { repository, owningTeams } of repositories) {
    if (owningTeams.length === 0) {
      return refuse(`${repository} is owned by no team: only an admin may request its deletion`)
    }
    if (!owningTeams.some((team) => memberOf.has(team))) {
      return refuse(`${repository} is owned by ${owningTeams.join(', ')}, and you are in none of them`)
    }
  }
  return { ok: true, as: 'owning-team-member' }
}
