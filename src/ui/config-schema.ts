import { type Static, Type } from 'typebox'

/**
 * The `ui` section: the web console served under /ui. It holds no secret: everything here is sent
 * to the browser as it is (the OIDC client is a public client that proves itself with PKCE).
 */
export const OidcConfigSchema = Type.Object(
  {
    issuer: Type.String({
      pattern: '^https?://[^\\s]+$',
      description:
        'The identity provider; its discovery document is `<issuer>/.well-known/openid-configuration`',
    }),
    clientId: Type.String({
      minLength: 1,
      maxLength: 200,
      description: "The console's client id at the provider (a public client: PKCE, no secret)",
    }),
    scopes: Type.String({
      minLength: 1,
      maxLength: 1000,
      default: 'openid profile',
      description: 'Scopes asked for, space separated; `openid` is needed',
    }),
    audience: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description: 'Sent as `audience` (Auth0 and others name the API an access token is for this way)',
      }),
    ),
    resource: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description: 'Sent as `resource` (RFC 8707 resource indicator)',
      }),
    ),
    origins: Type.Array(Type.String({ pattern: '^https?://[^/\\s]+$' }), {
      default: [],
      maxItems: 10,
      description:
        'Other origins the browser calls (token endpoint on another host than the issuer); the issuer origin is always allowed',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Sign-in with an OpenID Connect provider; nothing here is secret, it is sent to the browser. Unset: the console signs in with a pasted token only',
  },
)

export const UiConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Serve the console under /ui' }),
    oidc: Type.Optional(OidcConfigSchema),
    pasteToken: Type.Optional(
      Type.Boolean({
        description:
          'Offer a "paste a token" sign-in form; default: on when `ui.oidc` is unset (development)',
      }),
    ),
  },
  { additionalProperties: false, default: {}, description: 'The web console under `/ui`' },
)

export type UiConfig = Static<typeof UiConfigSchema>
