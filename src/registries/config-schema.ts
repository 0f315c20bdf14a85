import { type Static, Type } from 'typebox'
import { GcConfigSchema } from '../gc/config-schema.js'
import { RegistryEventsConfigSchema } from '../registry-events/config-schema.js'

/**
 * One configured registry. Credentials are never written here: only the name of the env variable
 * or file that holds them, so they stay out of the config file, the database and the logs.
 */
export const RegistryAuthSchema = Type.Object(
  {
    username: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'User name for Basic auth and for the token realm; required with a password',
      }),
    ),
    passwordEnv: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description: 'Name of the environment variable holding the password; unset at start stops the start',
      }),
    ),
    passwordFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Path of a file holding the password (e.g. a mounted secret; a final newline is dropped), read at start; `passwordEnv` wins when both are set',
      }),
    ),
    tokenEnv: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description:
          'Name of an environment variable holding a static bearer token, sent to the registry as is (no token server involved)',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Credentials, by reference only: the names of environment variables or files, never the secret itself. Unset: anonymous calls',
  },
)

export const RegistryTimeoutsSchema = Type.Object(
  {
    connectMs: Type.Integer({ minimum: 1, default: 5000, description: 'TCP and TLS connect timeout' }),
    headersMs: Type.Integer({
      minimum: 1,
      default: 30000,
      description: 'How long a call waits for the response headers once its request is sent',
    }),
    bodyMs: Type.Integer({
      minimum: 1,
      default: 60000,
      description: 'Longest pause while reading a response body; a slow but steady transfer is never cut',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Outbound timeouts of every call to this registry and its token realms; a GET or HEAD that times out is retried (`retries`)',
  },
)

export const RegistryKindSchema = Type.Union([Type.Literal('distribution')])

export const RegistryConfigSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
      description:
        'Short, unique name by which URLs (`/v1/registries/{registry}/…`), the audit log, governance and usage name this registry',
    }),
    url: Type.String({
      pattern: '^https?://[^/@]+(/.*)?$',
      description:
        'Base URL, e.g. `https://registry.example.com` (a path prefix is kept); no user info: credentials go in `auth`',
    }),
    aliases: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9.-]+(:\\d{1,5})?$', maxLength: 260 }), {
        description:
          'Other host names (host or host:port) images from this registry are pulled by: mirrors, DNS names, `docker.io`',
      }),
    ),
    kind: Type.Union([RegistryKindSchema], {
      default: 'distribution',
      description:
        'The registry API: `distribution` (CNCF distribution / `registry:2` and registries speaking its API); whether deletes, tag deletes and referrers work is probed, not assumed',
    }),
    auth: Type.Optional(RegistryAuthSchema),
    tokenRealms: Type.Array(Type.String({ pattern: '^https?://' }), {
      default: [],
      description:
        "Other token realms (compared by scheme, host and port) this registry's credentials may be sent to; the registry's own origin is always allowed, any other realm is refused with `REGENT_TOKEN_REALM_REFUSED`",
    }),
    caFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM file of a CA to trust for this registry and its token realms, next to the system roots (for a private CA)',
      }),
    ),
    timeouts: RegistryTimeoutsSchema,
    maxConcurrency: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 8,
      description:
        'Most connections to this registry from one process; further calls wait for a free one. Raise it for a registry that takes parallel load well',
    }),
    retries: Type.Integer({
      minimum: 0,
      maximum: 10,
      default: 3,
      description:
        'How often a failed GET or HEAD (network error, 5xx, 429) is retried, with backoff and jitter and honouring `Retry-After`; DELETE and PUT are never retried blindly. `0`: no retries',
    }),
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
