import { type Static, Type } from 'typebox'

export const JWT_ALGORITHMS = ['HS256', 'RS256', 'ES256'] as const

/**
 * How tokens are verified. Exactly one key source is used: a JWKS URL, a public key file, or (for
 * development and tests) an HS256 secret. Without any, the embedded default generates a secret.
 */
export const AuthConfigSchema = Type.Object(
  {
    jwtSecret: Type.Optional(
      Type.String({ minLength: 32, description: 'HS256 secret (development and tests)' }),
    ),
    publicKeyFile: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM public key (RS256 or ES256)' }),
    ),
    jwksUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
    jwksCooldownMs: Type.Integer({ minimum: 0, default: 30_000 }),
    jwksTimeoutMs: Type.Integer({ minimum: 100, default: 5000 }),
    algorithms: Type.Optional(
      Type.Array(Type.Union(JWT_ALGORITHMS.map((a) => Type.Literal(a))), { minItems: 1 }),
    ),
    issuer: Type.Optional(Type.String({ minLength: 1 })),
    audience: Type.Optional(Type.String({ minLength: 1 })),
    clockToleranceSec: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
    maxTokenLifetimeSec: Type.Integer({
      minimum: 60,
      default: 86400,
      description: 'Tokens whose exp - iat is longer are refused (a stolen token must run out)',
    }),
    teamsClaim: Type.String({ minLength: 1, default: 'groups' }),
    rolesClaim: Type.String({ minLength: 1, default: 'roles' }),
    bots: Type.Array(
      Type.Object(
        {
          subject: Type.String({ minLength: 1, maxLength: 256, description: "The bot token's `sub`" }),
          actFor: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
            minItems: 1,
            description: 'Globs of the subjects this bot may act for (X-Regent-On-Behalf-Of)',
          }),
        },
        { additionalProperties: false },
      ),
      {
        default: [],
        description:
          'When set, only these bots may act on behalf of someone, and only for the subjects listed',
      },
    ),
  },
  { additionalProperties: false, default: {} },
)

export type AuthConfig = Static<typeof AuthConfigSchema>
