/**
 * Secrets never live in the config file: config names the environment variable (or file) that
 * holds each one. This is where they are read from, the one reader of process.env besides
 * src/config.ts. Tests pass an environment of their own.
 */
export type SecretEnv = Readonly<Record<string, string | undefined>>

export function secretEnv(override?: SecretEnv): SecretEnv {
  return override ?? process.env
}

/** The value of the variable config names for a secret; throws naming the config key when unset. */
export function readSecret(env: SecretEnv, variable: string, key: string): string {
  const value = env[variable]
  if (!value) throw new Error(`environment variable ${variable} (${key}) is not set`)
  return value
}
