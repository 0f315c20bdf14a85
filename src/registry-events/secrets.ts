import { createHash, timingSafeEqual } from 'node:crypto'
import type { RegistryConfig } from '../registries/config-schema.js'

/** Registry name → the SHA-256 of its event secret, or null when it takes no events. */
export type EventSecrets = Map<string, Buffer | null>

/**
 * Reads every configured secret once, at startup, so a missing variable stops the service from
 * booting (like a missing registry password) instead of refusing every envelope later.
 */
export function resolveEventSecrets(
  registries: RegistryConfig[],
  env: Record<string, string | undefined>,
): EventSecrets {
  const secrets: EventSecrets = new Map()
  for (const registry of registries) {
    if (!registry.events) {
      secrets.set(registry.name, null)
      continue
    }
    const value = env[registry.events.secretEnv]
    if (!value) {
      throw new Error(
        `registry ${registry.name}: environment variable ${registry.events.secretEnv} (events.secretEnv) is not set`,
      )
    }
    secrets.set(registry.name, digest(value))
  }
  return secrets
}

/**
 * Constant-time comparison. Both sides are hashed first: timingSafeEqual needs equal lengths, and
 * comparing lengths directly would tell a caller how long the secret is.
 */
export function secretMatches(expected: Buffer, given: string | string[] | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0) return false
  return timingSafeEqual(expected, digest(given))
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}
