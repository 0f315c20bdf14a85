import { generateKeyPairSync, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'

/**
 * A small, real OpenID Connect provider (`oidc-provider`, certified by the OpenID Foundation) on a
 * free loopback port, for the console's sign-in. Its development login page accepts any user name
 * with any password; `accounts` decides the teams and roles the access token carries. Access
 * tokens are RS256 JWTs for `audience`, verifiable through the provider's JWKS, as Regent wants.
 */

export interface OidcAccount {
  groups?: string[]
  roles?: string[]
}

export interface TestOidcProvider {
  issuer: string
  jwksUrl: string
  clientId: string
  resource: string
  audience: string
  stop(): Promise<void>
}

export async function startOidcProvider(options: {
  redirectUri: string
  accounts: Record<string, OidcAccount>
  clientId?: string
}): Promise<TestOidcProvider> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clientId = options.clientId ?? 'regent-console'
  const resource = 'https://regent.test/api'
  const audience = resource
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' }

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        token_endpoint_auth_method: 'none',
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: ['openid', 'profile', 'regent'],
    pkce: { required: () => true },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
      const account = token.accountId ? options.accounts[token.accountId] : undefined
      return account ? { groups: account.groups ?? [], roles: account.roles ?? [] } : undefined
    },
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: 'regent',
          audience,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  })
  // A failure inside the provider would otherwise show only as an error page in the browser.
  provider.on('server_error', (_ctx: unknown, err: Error) => console.error('oidc-provider:', err))
  server.on('request', provider.callback())
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    clientId,
    resource,
    audience,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
