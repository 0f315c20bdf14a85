import { inspect } from 'node:util'
import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, registryEnv, type Teardownable, withRegistry } from '../helpers/registry.js'

const tokenRegistry = await withRegistry(t, { auth: 'token' })
const tokenServer = tokenRegistry.tokenServer!
const proxy = await startFaultProxy(tokenRegistry.url)
t.teardown(proxy.stop)
const config = registryConfig({ url: proxy.url, credentials: tokenRegistry.credentials, tokenServer })
const env = registryEnv(tokenRegistry)

function freshClient(t: Teardownable) {
  const client = new RegistryClient(config, { env, retryBaseMs: 10 })
  t.teardown(() => client.close())
  return client
}

const seeder = freshClient(t)
const imageA = await pushImage(seeder, 'team-a/app', { tags: ['v1'] })
const imageB = await pushImage(seeder, 'team-b/app', { tags: ['v1'] })

function resetTokenServer() {
  tokenServer.requests.length = 0
  tokenServer.expiresIn = 300
  tokenServer.issueExpired = 0
  tokenServer.field = 'both'
}

t.test('pushing asked for pull,push tokens of each repository only', async (t) => {
  const scopes = new Set(tokenServer.requests.flatMap((r) => r.scopes))
  t.ok(scopes.has('repository:team-a/app:pull,push'))
  t.ok(scopes.has('repository:team-b/app:pull,push'))
  t.notOk(
    [...scopes].some((s) => s.includes('*') || s.includes('delete')),
    'no wider scope was asked for',
  )
})

t.test('each repository gets a token of its own scope, and a second call reuses it', async (t) => {
  resetTokenServer()
  const client = freshClient(t)
  t.equal((await client.headManifest('team-a/app', 'v1'))?.digest, imageA.digest)
  t.equal((await client.headManifest('team-b/app', 'v1'))?.digest, imageB.digest)
  t.same(
    tokenServer.requests.map((r) => r.scopes),
    [['repository:team-a/app:pull'], ['repository:team-b/app:pull']],
    'one token per repository, pull only',
  )
  t.same(
    tokenServer.requests.map((r) => [r.service, r.username]),
    [
      [tokenServer.service, 'regent'],
      [tokenServer.service, 'regent'],
    ],
    'service from the challenge, Basic credentials to the allowlisted realm',
  )
  await client.getManifest('team-a/app', 'v1')
  await client.headManifest('team-a/app', imageA.digest)
  for await (const _tag of client.tags('team-a/app')) {
    // listing uses the same pull token
  }
  t.equal(tokenServer.issued('repository:team-a/app:pull'), 1, 'the cached token is reused')
  t.equal(tokenServer.requests.length, 2, 'no other token was fetched')
})

t.test('catalog and delete ask for their own scopes', async (t) => {
  resetTokenServer()
  const client = freshClient(t)
  const names: string[] = []
  for await (const name of client.catalog()) names.push(name)
  t.same(names, ['team-a/app', 'team-b/app'])
  const extra = await pushImage(client, 'team-a/app', { tags: ['to-delete'] })
  const result = await client.deleteManifest('team-a/app', extra.digest)
  t.equal(result.outcome, 'ok')
  t.same(
    tokenServer.requests.map((r) => r.scopes[0]),
    [
      'registry:catalog:*',
      'repository:team-a/app:pull', // pushBlob HEADs before uploading
      'repository:team-a/app:pull,push',
      'repository:team-a/app:pull,delete',
    ],
    'one token per scope, each fetched once',
  )
})

t.test('a token the registry refuses as expired is refreshed exactly once', async (t) => {
  resetTokenServer()
  tokenServer.issueExpired = 1
  const client = freshClient(t)
  await client.ping()
  proxy.resetCounts()
  const head = await client.headManifest('team-a/app', 'v1')
  t.equal(head?.digest, imageA.digest, 'the call succeeds with the refreshed token')
  t.equal(tokenServer.issued('repository:team-a/app:pull'), 2, 'the expired token, then one refresh')
  t.equal(proxy.count('HEAD'), 2, 'one 401, one retry')
})

t.test('a registry that keeps refusing fresh tokens fails after one refresh, not a loop', async (t) => {
  resetTokenServer()
  tokenServer.issueExpired = 10
  const client = freshClient(t)
  await client.ping()
  proxy.resetCounts()
  await t.rejects(client.headManifest('team-b/app', 'v1'), {
    code: 'REGENT_REGISTRY_AUTH_FAILED',
    registryStatus: 401,
  })
  t.equal(tokenServer.issued('repository:team-b/app:pull'), 2, 'one fetch, one refresh')
  t.equal(proxy.count('HEAD'), 2)
})

t.test('a token past expires_in is fetched again before use', async (t) => {
  resetTokenServer()
  tokenServer.expiresIn = 1
  const client = freshClient(t)
  await client.headManifest('team-a/app', 'v1')
  await client.headManifest('team-a/app', 'v1')
  t.equal(tokenServer.issued(), 1, 'still cached within expires_in')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  proxy.resetCounts()
  await client.headManifest('team-a/app', 'v1')
  t.equal(tokenServer.issued(), 2, 'fetched again after expiry')
  t.equal(proxy.count('HEAD'), 1, 'without a 401 round trip')
})

t.test('a token server answering only access_token works', async (t) => {
  resetTokenServer()
  tokenServer.field = 'access_token'
  const client = freshClient(t)
  t.equal((await client.headManifest('team-b/app', 'v1'))?.digest, imageB.digest)
})

t.test('wrong credentials fail with REGENT_REGISTRY_AUTH_FAILED and no secret in the error', async (t) => {
  resetTokenServer()
  const client = new RegistryClient(config, {
    env: { REGENT_TEST_REGISTRY_PASSWORD: 'canary-wrong-password' },
  })
  t.teardown(() => client.close())
  const err = await client.headManifest('team-a/app', 'v1').catch((e: unknown) => e as Error)
  t.match(err, { code: 'REGENT_REGISTRY_AUTH_FAILED', statusCode: 502 })
  const shown = `${inspect(err, { depth: 5 })} ${JSON.stringify(err)} ${inspect(client, { depth: 5 })}`
  t.notMatch(shown, 'canary-wrong-password')
  t.notMatch(shown, /Basic |Bearer ey/)
})

t.test('the probe of a token registry reports bearer auth with working credentials', async (t) => {
  const client = freshClient(t)
  const caps = await client.probe()
  t.match(caps, {
    reachable: true,
    authKind: 'bearer',
    authenticated: true,
    catalog: true,
    deleteEnabled: true,
  })
})

t.test('htpasswd registry: Basic credentials work, missing or wrong ones fail', async (t) => {
  const basic = await withRegistry(t, { auth: 'htpasswd' })
  const client = new RegistryClient(registryConfig(basic), { env: registryEnv(basic) })
  t.teardown(() => client.close())
  t.match(await client.ping(), { status: 401, authKind: 'basic' })
  const image = await pushImage(client, 'basic/app', { tags: ['v1'] })
  t.equal((await client.getManifest('basic/app', 'v1')).digest, image.digest)
  t.match(await client.probe(), { authKind: 'basic', authenticated: true, deleteEnabled: true })

  const anonymous = new RegistryClient(registryConfig({ url: basic.url }))
  t.teardown(() => anonymous.close())
  await t.rejects(anonymous.getManifest('basic/app', 'v1'), { code: 'REGENT_REGISTRY_AUTH_FAILED' })
  const wrong = new RegistryClient(registryConfig(basic), { env: { REGENT_TEST_REGISTRY_PASSWORD: 'nope' } })
  t.teardown(() => wrong.close())
  await t.rejects(wrong.getManifest('basic/app', 'v1'), {
    code: 'REGENT_REGISTRY_AUTH_FAILED',
    registryStatus: 401,
  })
})

t.test('a password variable that is not set fails at construction, naming the variable only', async (t) => {
  t.throws(() => new RegistryClient(config, { env: {} }), {
    code: 'REGENT_REGISTRY_CREDENTIALS_MISSING',
    message: /REGENT_TEST_REGISTRY_PASSWORD/,
  })
})

t.test('the probe reports credentials the token server refuses as not authenticated', async (t) => {
  resetTokenServer()
  const client = new RegistryClient(config, { env: { REGENT_TEST_REGISTRY_PASSWORD: 'wrong' } })
  t.teardown(() => client.close())
  t.match(await client.probe(), { reachable: true, authKind: 'bearer', authenticated: false })
})
