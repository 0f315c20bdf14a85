import t from 'tap'
import { checkRealm, isLoopbackHost, parseWwwAuthenticate } from '../../src/oci/challenge.js'
import { cacheLifetimeMs, TokenCache } from '../../src/oci/tokens.js'

t.test('a Docker Hub style Bearer challenge', async (t) => {
  t.same(
    parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/ubuntu:pull',
        },
      },
    ],
  )
})

t.test('commas inside quotes belong to the value (scope with several actions)', async (t) => {
  const [c] = parseWwwAuthenticate(
    'Bearer realm="https://r.test/t",scope="repository:a/b:pull,push,delete",error="insufficient_scope"',
  )
  t.equal(c?.params.scope, 'repository:a/b:pull,push,delete')
  t.equal(c?.params.error, 'insufficient_scope')
})

t.test('several challenges in one header and across header lines', async (t) => {
  const one = parseWwwAuthenticate(
    'Basic realm="Registry, with comma", Bearer realm="https://r.test/token", service="svc"',
  )
  t.same(one, [
    { scheme: 'basic', params: { realm: 'Registry, with comma' } },
    { scheme: 'bearer', params: { realm: 'https://r.test/token', service: 'svc' } },
  ])
  const lines = parseWwwAuthenticate(['Basic realm="a"', 'Bearer realm="https://r.test/token"'])
  t.same(
    lines.map((c) => c.scheme),
    ['basic', 'bearer'],
  )
})

t.test('RFC 9110 example: escapes, unquoted values, mixed case and spacing', async (t) => {
  const parsed = parseWwwAuthenticate(
    'Newauth realm="apps", type=1,  title="Login to \\"apps\\"", BASIC   Realm = "simple"',
  )
  t.same(parsed, [
    { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
    { scheme: 'basic', params: { realm: 'simple' } },
  ])
})

t.test('token68 challenges, empty and garbage input', async (t) => {
  t.same(parseWwwAuthenticate('Negotiate abc123==, Bearer realm="https://r.test/t"'), [
    { scheme: 'negotiate', params: {}, token68: 'abc123==' },
    { scheme: 'bearer', params: { realm: 'https://r.test/t' } },
  ])
  t.same(parseWwwAuthenticate(undefined), [])
  t.same(parseWwwAuthenticate(''), [])
  t.same(parseWwwAuthenticate('Bearer'), [{ scheme: 'bearer', params: {} }])
  t.same(parseWwwAuthenticate('Bearer realm="unterminated'), [
    { scheme: 'bearer', params: { realm: 'unterminated' } },
  ])
  t.same(parseWwwAuthenticate('Bearer realm=https://r.test/t,service=svc'), [
    { scheme: 'bearer', params: { realm: 'https://r.test/t', service: 'svc' } },
  ])
})

t.test('realm allowlist by origin: scheme, host and port', async (t) => {
  const registry = new URL('https://registry.example.com')
  const allow = ['https://auth.example.com', 'http://127.0.0.1:5001/anything']
  const ok = (realm: string, reg = registry) => checkRealm('r', realm, reg, allow).href
  t.equal(
    ok('https://registry.example.com/token'),
    'https://registry.example.com/token',
    "the registry's own origin",
  )
  t.equal(
    ok('https://auth.example.com/token?x=1'),
    'https://auth.example.com/token?x=1',
    'an allowlisted origin',
  )
  t.equal(ok('http://127.0.0.1:5001/token'), 'http://127.0.0.1:5001/token', 'loopback http, allowlisted')
  const refuse = (realm: string, why: RegExp, reg = registry) =>
    t.throws(
      () => checkRealm('r', realm, reg, allow),
      { code: 'REGENT_TOKEN_REALM_REFUSED', message: why },
      realm,
    )
  refuse('https://auth.example.com:8443/token', /neither/)
  refuse('https://evil.example.com/token', /neither/)
  refuse('http://auth.example.com/token', /not https/)
  refuse('http://169.254.169.254/latest', /not https/)
  refuse('http://127.0.0.1:5002/token', /neither/)
  refuse('https://user:pw@auth.example.com/token', /user info/)
  refuse('/relative/token', /not an absolute URL/)
  refuse('ftp://auth.example.com/token', /not https/)
})

t.test('loopback means 127.0.0.0/8, ::1 and localhost', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '[::1]', 'localhost', 'LOCALHOST'])
    t.ok(isLoopbackHost(host), host)
  for (const host of [
    '128.0.0.1',
    '127.0.0.1.evil.com',
    '10.0.0.1',
    '0.0.0.0',
    '[::ffff:7f00:1]',
    'localhost.evil',
  ]) {
    t.notOk(isLoopbackHost(host), host)
  }
})

t.test('token cache: per key, until expires_in minus a margin, one fetch at a time', async (t) => {
  let now = 0
  const cache = new TokenCache(() => now)
  let fetches = 0
  const fetch = async () => ({ token: `tok-${++fetches}`, expiresInSeconds: 60 })
  const [a, b] = await Promise.all([cache.get('k', fetch), cache.get('k', fetch)])
  t.equal(a, 'tok-1')
  t.equal(b, 'tok-1', 'concurrent callers share one fetch')
  now = cacheLifetimeMs(60) - 1
  t.equal(await cache.get('k', fetch), 'tok-1', 'still valid just before the margin')
  now = cacheLifetimeMs(60)
  t.equal(await cache.get('k', fetch), 'tok-2', 'renewed at expiry minus margin')
  t.equal(await cache.get('other', fetch), 'tok-3', 'another scope, another token')
  cache.invalidate('k', 'tok-1')
  t.equal(await cache.get('k', fetch), 'tok-2', 'invalidating an old token keeps the newer one')
  cache.invalidate('k', 'tok-2')
  t.equal(await cache.get('k', fetch), 'tok-4')
  t.equal(cacheLifetimeMs(60), 54_000)
  t.equal(cacheLifetimeMs(3600), 3_590_000)
  t.equal(cacheLifetimeMs(1), 900)
})
