import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import { redirectTo, startCaptureServer } from '../helpers/capture-server.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage, sha256 } from '../helpers/fixtures.js'
import { registryConfig, type Teardownable, withRegistry } from '../helpers/registry.js'

/**
 * Credentials must reach only the registry's origin and allowlisted realms. Everything here
 * runs on 127.0.0.1, so "another host" is another origin: another port.
 */

const registry = await withRegistry(t)
const seeder = new RegistryClient(registryConfig(registry))
t.teardown(() => seeder.close())
const image = await pushImage(seeder, 'realm/app', { tags: ['v1'] })

const PASSWORD = 'canary-password-realm'
const env = { REGENT_TEST_REGISTRY_PASSWORD: PASSWORD }
const withCredentials = { auth: { username: 'regent', passwordEnv: 'REGENT_TEST_REGISTRY_PASSWORD' } }

async function setup(t: Teardownable, challenge: (capture: string) => string, path?: string) {
  const capture = await startCaptureServer()
  t.teardown(capture.stop)
  const proxy = await startFaultProxy(registry.url)
  t.teardown(proxy.stop)
  proxy.addFault({
    fault: { kind: 'status', status: 401, headers: { 'www-authenticate': challenge(capture.url) } },
    ...(path ? { path } : {}),
  })
  return { capture, proxy }
}
t.test('a bearer realm on another origin is refused and receives nothing', async (t) => {
  const { capture, proxy } = await setup(
    t,
    (c) => `Bearer realm="${c}/token",service="evil",scope="repository:realm/app:pull"`,
  )
  const client = new RegistryClient(registryConfig(proxy, withCredentials), { env })
  t.teardown(() => client.close())
  await t.rejects(client.headManifest('realm/app', 'v1'), {
    code: 'REGENT_TOKEN_REALM_REFUSED',
    statusCode: 502,
  })
  await t.rejects(client.ping(), { code: 'REGENT_TOKEN_REALM_REFUSED' })
  t.equal(capture.requests.length, 0, 'the capture server saw no request at all')
  t.same(
    proxy.requests.map((r) => r.headers.authorization).filter(Boolean),
    [],
    'no credentials to the registry either',
  )
})

t.test('a realm announced mid-session (after an anonymous ping) is checked too', async (t) => {
  const { capture, proxy } = await setup(t, (c) => `Bearer realm="${c}/token",service="evil"`, '/v2/realm/')
  const client = new RegistryClient(registryConfig(proxy, withCredentials), { env })
  t.teardown(() => client.close())
  t.match(await client.ping(), { status: 200, authKind: 'none' })
  await t.rejects(client.getManifest('realm/app', 'v1'), { code: 'REGENT_TOKEN_REALM_REFUSED' })
  t.equal(capture.requests.length, 0)
})

t.test('several challenges with commas inside quotes still yield the refused bearer realm', async (t) => {
  const { capture, proxy } = await setup(
    t,
    (c) =>
      `Basic realm="a, b", Bearer realm="${c}/token",service="evil",scope="repository:realm/app:pull,push"`,
  )
  const client = new RegistryClient(registryConfig(proxy, withCredentials), { env })
  t.teardown(() => client.close())
  await t.rejects(client.headManifest('realm/app', 'v1'), { code: 'REGENT_TOKEN_REALM_REFUSED' })
  t.equal(capture.requests.length, 0)
})

t.test('an allowlisted realm answering 302 is refused and the redirect target sees nothing', async (t) => {
  const target = await startCaptureServer()
  t.teardown(target.stop)
  const realm = await startCaptureServer(redirectTo(`${target.url}/steal`))
  t.teardown(realm.stop)
  const { proxy } = await setup(t, () => `Bearer realm="${realm.url}/token",service="registry"`)
  const client = new RegistryClient(registryConfig(proxy, { ...withCredentials, tokenRealms: [realm.url] }), {
    env,
  })
  t.teardown(() => client.close())
  await t.rejects(client.headManifest('realm/app', 'v1'), {
    code: 'REGENT_TOKEN_REALM_REFUSED',
    message: /redirect/,
  })
  t.equal(realm.requests.length, 1, 'the allowlisted realm was asked once')
  t.match(realm.requests[0]?.url, /scope=repository%3Arealm%2Fapp%3Apull/, 'scope URL-encoded')
  t.equal(target.requests.length, 0, 'the redirect was not followed')
})

t.test(
  'realms that are plain http off loopback, carry user info or sit on metadata addresses are refused',
  async (t) => {
    for (const realm of [
      'http://169.254.169.254/latest/meta-data',
      'http://registry.example.invalid/token',
      'https://attacker.example.invalid/token',
    ]) {
      const { proxy } = await setup(t, () => `Bearer realm="${realm}"`)
      const client = new RegistryClient(registryConfig(proxy, { ...withCredentials, tokenRealms: [realm] }), {
        env,
      })
      if (realm.startsWith('https')) {
        // Allowlisted https on a non-loopback host would be fetched; make sure it is refused when not listed.
        const strict = new RegistryClient(registryConfig(proxy, withCredentials), { env })
        await t.rejects(strict.ping(), { code: 'REGENT_TOKEN_REALM_REFUSED' }, `${realm} not allowlisted`)
        await strict.close()
      } else {
        await t.rejects(client.ping(), { code: 'REGENT_TOKEN_REALM_REFUSED' }, realm)
      }
      await client.close()
    }
    const capture = await startCaptureServer()
    t.teardown(capture.stop)
    const userinfo = capture.url.replace('http://', 'http://user:secret@')
    const { proxy } = await setup(t, () => `Bearer realm="${userinfo}/token"`)
    const client = new RegistryClient(
      registryConfig(proxy, { ...withCredentials, tokenRealms: [capture.url] }),
      { env },
    )
    t.teardown(() => client.close())
    await t.rejects(client.ping(), { code: 'REGENT_TOKEN_REALM_REFUSED', message: /user info/ })
    t.equal(capture.requests.length, 0)
  },
)

t.test('the same registry without the fault still serves the image', async (t) => {
  t.equal((await seeder.headManifest('realm/app', 'v1'))?.digest, image.digest)
})

t.test('a blob redirected to storage is fetched there without the registry credentials', async (t) => {
  const blob = Buffer.from('{"architecture":"amd64","os":"linux"}')
  const digest = sha256(blob)
  const storage = await startCaptureServer({
    headers: { 'content-type': 'application/octet-stream' },
    body: blob,
  })
  t.teardown(storage.stop)
  // A Basic-auth registry whose blob storage hands out presigned URLs elsewhere (S3, GCS).
  const fake = await startCaptureServer((req) => {
    if (!req.headers.authorization) {
      return { status: 401, headers: { 'www-authenticate': 'Basic realm="fake"' } }
    }
    if (req.url.includes('/blobs/')) return redirectTo(`${storage.url}/bucket/blob?X-Signature=abc`, 307)
    return { body: '{}' }
  })
  t.teardown(fake.stop)
  const client = new RegistryClient(registryConfig(fake, withCredentials), { env })
  t.teardown(() => client.close())
  t.ok((await client.getBlob('realm/app', digest)).equals(blob), 'the blob, digest-checked')
  t.equal(storage.requests.length, 1)
  t.equal(storage.requests[0]?.headers.authorization, undefined, 'no credentials to the storage host')
  t.ok(fake.withAuthorization().length > 0, 'the registry itself got them')
})
