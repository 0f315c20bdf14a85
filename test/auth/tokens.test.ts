import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createSigner } from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { JwksCache } from '../../src/auth/keys.js'
import { authHeaders, build, signToken, TEST_JWT_SECRET } from '../helper.js'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const publicKeyFile = path.join(tmpdir(), `regent-test-rsa-${process.pid}.pem`)
writeFileSync(publicKeyFile, publicPem)

const ISSUER = 'https://idp.test'
const AUDIENCE = 'regent'
const now = () => Math.floor(Date.now() / 1000)

function rs256(key: KeyObject, claims: Record<string, unknown>, kid?: string): string {
  return createSigner({
    key: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    algorithm: 'RS256',
    ...(kid ? { kid } : {}),
  })(claims)
}

function unsigned(claims: Record<string, unknown>): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`
}

async function status(app: FastifyInstance, token: string) {
  const res = await app.inject({
    method: 'GET',
    url: '/v1/me',
    headers: { authorization: `Bearer ${token}` },
  })
  return res
}

t.test('a forged or invalid token is refused with 401 and WWW-Authenticate: Bearer', async (t) => {
  const app = await build(t, { config: { auth: { publicKeyFile, issuer: ISSUER, audience: AUDIENCE } } })
  const good = { sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: now() + 600, roles: ['viewer'] }

  const control = await status(app, rs256(rsa.privateKey, good))
  t.equal(control.statusCode, 200, 'a correctly signed token is accepted (control)')

  const forged: Record<string, string> = {
    'alg none': unsigned(good),
    'HS256 signed with the RS256 public key': createSigner({ key: publicPem, algorithm: 'HS256' })(good),
    'HS256 signed with the public key and leading whitespace': createSigner({
      key: `\n  ${publicPem}`,
      algorithm: 'HS256',
    })(good),
    'wrong iss': rs256(rsa.privateKey, { ...good, iss: 'https://evil.test' }),
    'wrong aud': rs256(rsa.privateKey, { ...good, aud: 'someone-else' }),
    expired: rs256(rsa.privateKey, { ...good, exp: now() - 3600 }),
    'nbf in the future': rs256(rsa.privateKey, { ...good, nbf: now() + 3600 }),
    'no exp': rs256(rsa.privateKey, { sub: 'alice', iss: ISSUER, aud: AUDIENCE }),
    'signed by an unknown key': rs256(otherRsa.privateKey, good),
    'not a JWT at all': 'hello',
  }
  for (const [name, token] of Object.entries(forged)) {
    const res = await status(app, token)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().error.code, 'REGENT_UNAUTHENTICATED', `${name}: code`)
    t.match(res.headers['www-authenticate'], /^Bearer /, `${name}: challenge`)
  }

  const missing = await app.inject({ method: 'GET', url: '/v1/me' })
  t.equal(missing.statusCode, 401, 'no token')
  t.match(missing.headers['www-authenticate'], /^Bearer /)
})

t.test('health, metrics and the API documents are reachable without a token; nothing else is', async (t) => {
  const app = await build(t)
  for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) {
    const res = await app.inject({ method: 'GET', url })
    t.ok(res.statusCode < 400, `${url} answers ${res.statusCode}`)
  }
  const me = await app.inject({ method: 'GET', url: '/v1/me' })
  t.equal(me.statusCode, 401)
})

t.test('the principal carries subject, teams and roles from configurable claims', async (t) => {
  const app = await build(t, {
    config: {
      auth: {
        jwtSecret: 'test-secret-0123456789abcdef0123456789abcdef',
        teamsClaim: 'teams',
        rolesClaim: 'scp',
      },
    },
  })
  const res = await app.inject({
    method: 'GET',
    url: '/v1/me',
    headers: {
      authorization: `Bearer ${signToken({ sub: 'bob', teams: ['payments', 'search'], scp: 'requester superuser' })}`,
    },
  })
  t.same(
    res.json(),
    { subject: 'bob', teams: ['payments', 'search'], roles: ['requester'] },
    'unknown roles are dropped',
  )
})

t.test('a bot acting for alice is seen as both; a non-bot sending the header gets 403', async (t) => {
  const app = await build(t)
  const asBot = await app.inject({
    method: 'GET',
    url: '/v1/me',
    headers: authHeaders(
      { sub: 'chatops-bot', roles: ['bot', 'requester'] },
      { 'x-regent-on-behalf-of': 'alice' },
    ),
  })
  t.equal(asBot.statusCode, 200)
  t.same(asBot.json(), {
    subject: 'chatops-bot',
    onBehalfOf: 'alice',
    teams: [],
    roles: ['bot', 'requester'],
  })

  const asRequester = await app.inject({
    method: 'GET',
    url: '/v1/me',
    headers: authHeaders({ sub: 'mallory', roles: ['requester'] }, { 'x-regent-on-behalf-of': 'alice' }),
  })
  t.equal(asRequester.statusCode, 403)
  t.equal(asRequester.json().error.code, 'REGENT_ON_BEHALF_NOT_ALLOWED')
})

t.test(
  'JWKS: keys are cached; unknown kids refetch at most once per cooldown; rotation is picked up',
  async (t) => {
    const keys = [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }]
    let fetches = 0
    const server = createServer((_req, res) => {
      fetches++
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    const jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`
    const app = await build(t, { config: { auth: { jwksUrl, jwksCooldownMs: 60_000 } } })
    const claims = { sub: 'alice', exp: now() + 600 }

    t.equal((await status(app, rs256(rsa.privateKey, claims, 'k1'))).statusCode, 200)
    t.equal((await status(app, rs256(rsa.privateKey, claims, 'k1'))).statusCode, 200)
    t.equal(fetches, 1, 'the second token is verified from the cache')

    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => status(app, rs256(otherRsa.privateKey, claims, `random-${i}`))),
    )
    t.ok(
      results.every((r) => r.statusCode === 401),
      'tokens with unknown kids are refused',
    )
    t.ok(
      fetches <= 2,
      `1,000 unknown kids cost at most one refetch within the cooldown (fetches: ${fetches})`,
    )
  },
)

t.test('JWKS cache: a newly published key is accepted after the cooldown', async (t) => {
  let clock = 0
  let published = ['k1']
  const cache = new JwksCache(
    'http://unused',
    1000,
    1000,
    async () => ({
      keys: published.map((kid) => ({ ...rsa.publicKey.export({ format: 'jwk' }), kid })),
    }),
    () => clock,
  )
  clock = 10_000
  await cache.keyFor('k1')
  published = ['k1', 'k2']
  clock += 10
  await t.rejects(cache.keyFor('k2'), 'within the cooldown the new kid is not fetched')
  clock += 2000
  t.ok(await cache.keyFor('k2'), 'after the cooldown the rotated key is found')
  t.equal(cache.fetchCount, 2)
})

t.test('a token may live at most auth.maxTokenLifetimeSec (24 h by default) from its iat', async (t) => {
  const hs256 = (claims: Record<string, unknown>) =>
    createSigner({ key: TEST_JWT_SECRET, algorithm: 'HS256' })({ sub: 'alice', ...claims })
  const code = async (app: FastifyInstance, token: string) => (await status(app, token)).statusCode
  const app = await build(t)
  const issued = now() - 60
  t.equal(await code(app, hs256({ iat: issued, exp: issued + 23 * 3600 })), 200, '23 hours is fine')
  t.equal(await code(app, hs256({ iat: issued, exp: issued + 25 * 3600 })), 401, '25 hours is refused')
  t.equal(await code(app, hs256({ iat: issued, exp: 1e308 })), 401, 'exp: 1e308 is refused')
  t.equal(await code(app, hs256({ exp: now() + 30 * 24 * 3600 })), 401, 'without iat, counted from now')
  t.equal(
    await code(app, hs256({ iat: now() + 3600, exp: now() + 7200 })),
    401,
    'an iat in the future is refused',
  )
  const longer = await build(t, {
    config: { auth: { jwtSecret: TEST_JWT_SECRET, maxTokenLifetimeSec: 7 * 86400 } },
  })
  t.equal(
    await code(longer, hs256({ iat: issued, exp: issued + 6 * 86400 })),
    200,
    'the limit is configurable',
  )
})
