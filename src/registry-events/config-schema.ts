import { type Static, Type } from 'typebox'

/**
 * The `events` section of a registry's config. The secret itself is never written here, only the
 * name of the environment variable holding it, like registry credentials (registries[].auth).
 */
export const RegistryEventsConfigSchema = Type.Object(
  {
    secretEnv: Type.String({
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'Environment variable holding the secret the registry sends in X-Regent-Event-Secret',
    }),
  },
  {
    additionalProperties: false,
    description:
      "Take this registry's notifications at `POST /v1/registries/{registry}/events` (first push, last push and last pull of each digest and tag, for retention); without it the endpoint answers 404 for this registry",
  },
)

export type RegistryEventsConfig = Static<typeof RegistryEventsConfigSchema>
