import type { GovernanceConfig, InUseLevel } from './config-schema.js'
import { matchesGlob, matchesTagPattern } from './globs.js'

/** A time-boxed hold (litigation, incident) that overrides every policy while it lasts. */
export interface LegalHold {
  id: string
  /** Registry name glob. */
  registry: string
  /** Repository glob. */
  repository: string
  /** Only this manifest; every manifest of the matching repositories when absent. */
  digest?: string
  until: Date
  reason?: string
}

export interface ProtectionTarget {
  registry: string
  repository: string
  /** Absent for an untagged manifest. */
  tag?: string
  digest: string
}

export type ProtectionLevel = 'none' | 'admin-only' | 'immutable' | 'held'

export interface ProtectionVerdict {
  level: ProtectionLevel
  /** What decided it, for people: the hold or the config rule. */
  rule?: string
}

/**
 * How protected one plan item is. An active legal hold (`until` after `now`) beats everything;
 * then an `immutable` rule beats an `admin-only` one; the first matching rule of the strongest
 * level is named. An untagged manifest is checked as the empty tag, so only tag patterns that
 * match every tag (such as `*`) cover it. A manifest that loses several tags is one item per tag:
 * the planner asks once for each. A hold or rule whose pattern does not compile throws
 * (PatternError): the deletion stops rather than treating the item as unprotected.
 */
export function protectionVerdict(
  config: GovernanceConfig,
  holds: readonly LegalHold[],
  target: ProtectionTarget,
  now: Date,
): ProtectionVerdict {
  for (const hold of holds) {
    if (hold.until.getTime() <= now.getTime()) continue
    if (hold.digest !== undefined && hold.digest !== target.digest) continue
    if (!matchesGlob(hold.registry, target.registry) || !matchesGlob(hold.repository, target.repository))
      continue
    return {
      level: 'held',
      rule: `legal hold ${hold.id} until ${hold.until.toISOString()}${hold.reason ? `: ${hold.reason}` : ''}`,
    }
  }

  const tag = target.tag ?? ''
  let verdict: ProtectionVerdict = { level: 'none' }
  config.protections.forEach((protection, index) => {
    if (verdict.level === 'immutable') return
    if (verdict.level === 'admin-only' && protection.level === 'admin-only') return
    if (!matchesGlob(protection.registry, target.registry)) return
    if (!matchesGlob(protection.repositories, target.repository)) return
    if (!protection.tags.some((pattern) => matchesTagPattern(pattern, tag))) return
    verdict = {
      level: protection.level,
      rule:
        `protections[${index}]: ${protection.registry} ${protection.repositories} tags ` +
        `${protection.tags.join(', ')} are ${protection.level}` +
        (protection.reason ? ` (${protection.reason})` : ''),
    }
  })
  return verdict
}

export interface InUsePolicy {
  level: InUseLevel
  /** What decided it, for people: the override or the default. */
  rule: string
}

/**
 * What deleting an image that is in use (or whose usage is unknown) means in this repository:
 * `refuse`, `admin-only` (an admin's approval) or `warn` (the plan says so and proceeds). The first
 * override whose registry and repository globs match wins; otherwise `governance.inUse.default`.
 */
export function inUsePolicy(config: GovernanceConfig, registry: string, repository: string): InUsePolicy {
  const overrides = config.inUse.overrides
  for (let index = 0; index < overrides.length; index++) {
    const override = overrides[index] as (typeof overrides)[number]
    if (!matchesGlob(override.registry, registry) || !matchesGlob(override.repositories, repository)) continue
    return {
      level: override.level,
      rule:
        `governance.inUse.overrides[${index}]: ${override.registry} ${override.repositories} is ${override.level}` +
        (override.reason ? ` (${override.reason})` : ''),
    }
  }
  return { level: config.inUse.default, rule: `governance.inUse.default is ${config.inUse.default}` }
}
