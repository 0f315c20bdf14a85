import { type Static, Type } from 'typebox'

export const JWT_ALGORITHMS = ['HS256', 'RS256', 'ES256'] as const

/**
 * How tokens are verified. Exactly one key source is used: a JWKS URL, a public key file, or (for
 * development and tests) an HS256 secret. Without any, the embedded default generates a secret.
 */
export const AuthConfigSchema = Type.Object(
  {
    jwtSecret: Type.Optional(
      Type.String({
        minLength: 32,
        description: 'HS256 secret, for development and tests; production uses `jwksUrl` or `publicKeyFile`',
      }),
    ),
    publicKeyFile: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'PEM public key file; an RSA key allows RS256, an EC key ES256',
      }),
    ),
    jwksUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description:
          'JWKS endpoint of your identity provider (RS256, ES256 keys); keys are cached by `kid` and refetched after 10 minutes, so a key removed there stops working within that time',
      }),
    ),
    jwksCooldownMs: Type.Integer({
      minimum: 0,
      default: 30_000,
      description:
        'A token with an unknown `kid` refetches the JWKS at most once per this period, so tokens with made-up key ids cannot flood the identity provider; a newly rotated key may wait this long',
    }),
    jwksTimeoutMs: Type.Integer({
      minimum: 100,
      default: 5000,
      description:
        'How long a JWKS fetch waits for the headers and for the body (redirects are not followed); tokens needing a key it failed to fetch get 401',
    }),
    algorithms: Type.Optional(
      Type.Array(Type.Union(JWT_ALGORITHMS.map((a) => Type.Literal(a))), {
        minItems: 1,
        description:
          'Explicit algorithm allowlist; it can only narrow what the key allows (a secret HS256, a public key RS256 or ES256 by its type, a JWKS both), and a list the key cannot verify stops the start. Unset: what the key allows',
      }),
    ),
    issuer: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Required `iss` claim; unset, tokens of any issuer are accepted',
      }),
    ),
    audience: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Required `aud` claim (e.g. `regent`); unset, tokens the same key signed for other applications are accepted too',
      }),
    ),
    clockToleranceSec: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 30,
      description:
        'Leeway in seconds for `exp`, `nbf` and a future `iat`, for clocks of the identity provider and Regent that differ',
    }),
    maxTokenLifetimeSec: Type.Integer({
      minimum: 60,
      default: 86400,
      description: 'Tokens whose exp - iat is longer are refused (a stolen token must run out)',
    }),
    teamsClaim: Type.String({
      minLength: 1,
      default: 'groups',
      description:
        "Claim holding the caller's teams (a list, or a space or comma separated string), matched against `governance.teams[].name`",
    }),
    rolesClaim: Type.String({
      minLength: 1,
      default: 'roles',
      description:
        "Claim holding the caller's roles: `viewer`, `requester`, `approver`, `admin`, `bot` (other values are ignored)",
    }),
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
  {
    additionalProperties: false,
    default: {},
    description:
      'How bearer tokens are verified, with exactly one key source (`jwksUrl`, `publicKeyFile` or `jwtSecret`)',
  },
)

export type AuthConfig = Static<typeof AuthConfigSchema>
