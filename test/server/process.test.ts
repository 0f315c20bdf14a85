import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { isAlive } from '../../src/db/embedded.js'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, createTestDatabase, TEST_JWT_SECRET } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { type RunningServer as Running, startServer, waitReady } from '../helpers/server-process.js'

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
}

async function stopWithSigterm(t: Test, server: Running): Promise<number> {
  const started = Date.now()
  server.child.kill('SIGTERM')
  const { code } = await server.exited
  const took = Date.now() - started
  t.equal(code, 0, 'exits 0 on SIGTERM')
  t.ok(took < 10_000, `exits within 10 s (took ${took} ms)`)
  return took
}

t.test(
  'embedded default: starts, is ready, reuses its data, survives a crash, and stops cleanly',
  async (t) => {
    // /tmp rather than the checkout: see scripts/run-tests.mjs about the unprivileged postgres user.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'regent-data-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))

    const first = await startServer({ REGENT_DATA_DIR: dataDir })
    t.teardown(() => first.child.kill('SIGKILL'))
    await waitReady(first)
    t.equal((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status, 200)
    t.match(first.output(), /initialising embedded postgres/)
    t.match(first.output(), /npm run -s token -- --sub/, 'the log says how to mint a development token')
    t.match(first.output(), /next steps:[\s\S]*REGENT_REGISTRY_URL=[\s\S]*REGENT_CONFIG=[\s\S]*npm run demo/)
    t.equal(statSync(path.join(dataDir, 'jwt-secret')).mode & 0o777, 0o600, 'the generated secret is private')
    const pgPid = postmasterPid(dataDir)
    const versionStamp = statSync(path.join(dataDir, 'pg', 'PG_VERSION')).mtimeMs
    await stopWithSigterm(t, first)
    await sleep(100)
    t.notOk(isAlive(pgPid), 'no postgres process is left behind')

    const second = await startServer({ REGENT_DATA_DIR: dataDir })
    t.teardown(() => second.child.kill('SIGKILL'))
    await waitReady(second)
    t.notMatch(second.output(), /initialising embedded postgres/, 'the second start reuses the data')
    t.equal(statSync(path.join(dataDir, 'pg', 'PG_VERSION')).mtimeMs, versionStamp)

    // A crash: the process dies without stopping its database, leaving postgres and its lock file.
    const orphan = postmasterPid(dataDir)
    second.child.kill('SIGKILL')
    await second.exited
    t.ok(isAlive(orphan), 'the crash left an orphaned postgres')

    const third = await startServer({ REGENT_DATA_DIR: dataDir })
    t.teardown(() => third.child.kill('SIGKILL'))
    await waitReady(third)
    t.match(third.output(), /orphaned embedded postgres/)
    t.notOk(isAlive(orphan), 'the orphan was stopped')
    const thirdPg = postmasterPid(dataDir)
    await stopWithSigterm(t, third)
    await sleep(100)
    t.notOk(isAlive(thirdPg), 'no postgres process is left behind')
    t.notOk(existsSync(path.join(dataDir, 'pg', 'postmaster.pid')), 'the lock file is gone')
  },
)

t.test('with DATABASE_URL: migrates an empty database, is ready, and stops cleanly', async (t) => {
  const url = await createTestDatabase(t, { empty: true })
  const server = await startServer({ DATABASE_URL: url, REGENT_JWT_SECRET: TEST_JWT_SECRET })
  t.teardown(() => server.child.kill('SIGKILL'))
  await waitReady(server)
  t.match(server.output(), /applied migrations/)
  const ready = (await (await fetch(`http://127.0.0.1:${server.port}/readyz`)).json()) as {
    checks: { database: { ok: boolean } }
  }
  t.equal(ready.checks.database.ok, true)
  await stopWithSigterm(t, server)
})

t.test('with DATABASE_URL and no JWT key the service refuses to start', async (t) => {
  const url = await createTestDatabase(t)
  const server = await startServer({ DATABASE_URL: url })
  const { code } = await server.exited
  t.equal(code, 2)
  t.match(server.output(), /auth: configure auth\.jwksUrl, auth\.publicKeyFile or REGENT_JWT_SECRET/)
})

t.test('an invalid config exits non-zero with one line per problem naming the key', async (t) => {
  const server = await startServer({ PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' })
  const { code } = await server.exited
  t.not(code, 0)
  const out = server.output()
  t.match(out, /port: .*\(from env PORT\)/)
  t.match(out, /logLevel: .*\(from env LOG_LEVEL\)/)
  t.match(out, /databaseUrl: .*\(from env DATABASE_URL\)/)
})

t.test(
  'with nothing configured the log, /readyz and / name the next steps; REGENT_REGISTRY_URL browses a registry with no file',
  async (t) => {
    const url = await createTestDatabase(t)
    const bare = await startServer({ DATABASE_URL: url, REGENT_JWT_SECRET: TEST_JWT_SECRET })
    t.teardown(() => bare.child.kill('SIGKILL'))
    await waitReady(bare)
    const ready = (await (await fetch(`http://127.0.0.1:${bare.port}/readyz`)).json()) as {
      nextSteps?: string[]
    }
    t.match(ready.nextSteps, [/No registry/, /REGENT_REGISTRY_URL=/, /REGENT_CONFIG=/, /npm run demo/])
    const index = await fetch(`http://127.0.0.1:${bare.port}/`)
    t.equal(index.status, 200)
    const body = (await index.json()) as { links: Record<string, string>; nextSteps: string[] }
    t.match(body.links, { docs: '/docs', ui: '/ui', graphql: '/graphql' })
    t.equal(body.nextSteps.length, 4)
    t.match(bare.output(), /next steps:/)
    await stopWithSigterm(t, bare)

    const registry = await withRegistry(t)
    const client = new RegistryClient(registryConfig(registry))
    t.teardown(() => client.close())
    await pushImage(client, 'payments/api', { tags: ['1.0.0'] })
    const quick = await startServer({
      DATABASE_URL: url,
      REGENT_JWT_SECRET: TEST_JWT_SECRET,
      REGENT_REGISTRY_URL: registry.url,
    })
    t.teardown(() => quick.child.kill('SIGKILL'))
    await waitReady(quick)
    const headers = authHeaders({ sub: 'viv', roles: ['viewer'] })
    const repos = await fetch(`http://127.0.0.1:${quick.port}/v1/registries/local/repositories`, { headers })
    t.equal(repos.status, 200)
    t.match(await repos.json(), { items: [{ name: 'payments/api' }] })
    const quickReady = (await (await fetch(`http://127.0.0.1:${quick.port}/readyz`)).json()) as {
      status: string
      nextSteps?: string[]
    }
    t.equal(quickReady.status, 'ready')
    t.equal(quickReady.nextSteps, undefined, 'no next steps once a registry is configured')
    t.notMatch(quick.output(), /next steps:/)
    await stopWithSigterm(t, quick)
  },
)
