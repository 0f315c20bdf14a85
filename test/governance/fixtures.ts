import { Value } from 'typebox/value'
import type { Principal } from '../../src/auth/principal.js'
import { type GovernanceConfig, GovernanceConfigSchema } from '../../src/governance/config-schema.js'

/** A governance config as loadConfig would produce it: defaults filled in, then validated. */
export function governance(input: unknown): GovernanceConfig {
  const config = Value.Default(GovernanceConfigSchema, structuredClone(input))
  if (!Value.Check(GovernanceConfigSchema, config)) {
    throw new Error(
      `bad test config: ${[...Value.Errors(GovernanceConfigSchema, config)].map((e) => e.message)}`,
    )
  }
  return config
}

export function principal(subject: string, fields: Partial<Principal> = {}): Principal {
  return { subject, teams: [], roles: ['viewer'], channel: 'api', ...fields }
}
