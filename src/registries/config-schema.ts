import { type Static, Type } from 'typebox'
import { GcConfigSchema } from '../gc/config-schema.js'
import { RegistryEventsConfigSchema } from '../registry-events/config-schema.js'

/**
 * One configured registry. Credentials are never written here: only the name of the env variable
 * or file that holds them, so they stay out of the config file, the database and the logs.
 */
export const RegistryAuthSchema = Type.Object(
  {
    username: Type.Optional(Type.String({ minLength: 1 })),
    passwordEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
    passwordFile: Type.Optional(Type.String({ minLength: 1 })),
    tokenEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
  },
  { additionalProperties: false },
)

export const RegistryTimeoutsSchema = Type.Object(
  {
    connectMs: Type.Integer({ minimum: 1, default: 5000 }),
    headersMs: Type.Integer({ minimum: 1, default: 30000 }),
    bodyMs: Type.Integer({ minimum: 1, default: 60000 }),
  },
  { additionalProperties: false, default: {} },
)

export const RegistryKindSchema = Type.Union([Type.Literal('distribution')])

export const RegistryConfigSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }),
    url: Type.String({ pattern: '^https?://[^/@]+(/.*)?$' }),
    aliases: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9.-]+(:\\d{1,5})?$', maxLength: 260 }), {
        description:
          'Other host names (host or host:port) images from this registry are pulled by: mirrors, DNS names, `docker.io`',
      }),
    ),
    kind: Type.Union([RegistryKindSchema], { default: 'distribution' }),
    auth: Type.Optional(RegistryAuthSchema),
    tokenRealms: Type.Array(Type.String({ pattern: '^https?://' }), { default: [] }),
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    timeouts: RegistryTimeoutsSchema,
    maxConcurrency: Type.Integer({ minimum: 1, maximum: 256, default: 8 }),
    retries: Type.Integer({ minimum: 0, maximum: 10, default: 3 }),
    keepAliveHead: Type.Boolean({
      default: true,
      description: 'Reuse connections after HEAD requests; turn off only for a server that mishandles them',
    }),
    gc: Type.Optional(GcConfigSchema),
    events: Type.Optional(RegistryEventsConfigSchema),
  },
  { additionalProperties: false },
)

export type RegistryConfig = Static<typeof RegistryConfigSchema>
