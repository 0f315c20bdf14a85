import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import pg from 'pg'
import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { createTestDatabase, TEST_JWT_SECRET } from '../helper.js'
import { stopChild } from '../helpers/child.js'
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import {
  type RunningServer as Running,
  startServer as startProcess,
  waitReady as waitUntilReady,
} from '../helpers/server-process.js'

/**
 * Losing the database fails operations, never the process: the real process (`node dist/server.js`)
 * runs deletion jobs while every one of its connections is terminated, or while its embedded
 * postmaster is killed. It stays up, /readyz tells the outage, and every job finishes once after.
 */
async function startServer(t: Test, env: Record<string, string>): Promise<Running> {
  const server = await startProcess(env)
  // SIGTERM first: the process then stops its embedded postmaster, which a SIGKILL would leave
  // running after the test (and its shared memory behind).
  t.teardown(() => stopChild(server.child, 10_000))
  return server
}

const url = (server: Running, p: string) => `http://127.0.0.1:${server.port}${p}`
const waitReady = (server: Running) => waitUntilReady(server, 90_000)

/** A config file: one registry (behind the fault proxy), payments deletes its own without approval. */
function configFile(dir: string, registryUrl: string): string {
  const file = path.join(dir, 'regent.json')
  writeFileSync(
    file,
    JSON.stringify({
      registries: [registryConfig({ url: registryUrl }, { name: 'local', retries: 0 })],
      governance: {
        teams: [
          {
            name: 'payments',
            repositories: [{ pattern: 'payments/**' }],
            approvals: { ownRepositories: 'none' },
          },
        ],
      },
      jobs: { leaseMs: 3000, heartbeatMs: 500, pollMs: 300, backoffBaseMs: 100, backoffMaxMs: 1000 },
      deletions: { repositoryConcurrency: 2, maxAttempts: 20 },
      database: { connectionTimeoutMs: 2000, readyTimeoutMs: 1000 },
    }),
  )
  return file
}

/** A registry whose DELETEs each take 300 ms, holding `count` images of payments/app. */
async function slowRegistry(t: Test, count: number): Promise<{ proxy: FaultProxy; tags: string[] }> {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const tags = Array.from({ length: count }, (_, i) => `build-${i}`)
  for (const tag of tags) await pushImage(client, 'payments/app', { tags: [tag], layers: 1 })
  const proxy = await startFaultProxy(registry.url)
  t.teardown(() => proxy.stop())
  proxy.addFault({ method: 'DELETE', fault: { kind: 'delay', ms: 300 } })
  return { proxy, tags }
}

function token(secret: string): string {
  return createSigner({ key: secret, algorithm: 'HS256', expiresIn: 3_600_000 })({
    sub: 'paula',
    groups: ['payments'],
    roles: ['requester', 'admin'],
  })
}

/** Files one delete-manifest request per group of tags; returns their ids. */
async function fileDeletions(server: Running, bearer: string, tags: string[], perRequest: number) {
  const ids: string[] = []
  for (let i = 0; i < tags.length; i += perRequest) {
    const res = await fetch(url(server, '/v1/deletions'), {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        registry: 'local',
        verb: 'delete-manifest',
        reason: 'outage drill',
        targets: tags.slice(i, i + perRequest).map((tag) => ({ repository: 'payments/app', tag })),
      }),
    })
    const body = (await res.json()) as { id: string; state: string }
    if (res.status !== 201) throw new Error(`deletion not filed: ${res.status} ${JSON.stringify(body)}`)
    ids.push(body.id)
  }
  return ids
}

async function finalStates(server: Running, bearer: string, ids: string[], timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const states: string[] = []
    for (const id of ids) {
      try {
        const res = await fetch(url(server, `/v1/deletions/${id}`), {
          headers: { authorization: `Bearer ${bearer}` },
        })
        states.push(res.ok ? ((await res.json()) as { state: string }).state : `http ${res.status}`)
      } catch {
        states.push('unreachable')
      }
    }
    if (states.every((s) => ['succeeded', 'partially_failed', 'failed'].includes(s))) return states
    if (Date.now() > deadline)
      throw new Error(`deletions not finished: ${states.join(', ')}\n${server.output().slice(-4000)}`)
    await sleep(300)
  }
}

/** Every execution job ran to success exactly once, and every item was deleted once. */
async function assertFinishedOnce(t: Test, db: pg.Client, ids: string[], items: number) {
  const jobs = await db.query<{ state: string; n: number }>(
    `SELECT state, count(*)::int AS n FROM jobs WHERE kind = 'deletion.execute' GROUP BY state`,
  )
  t.same(jobs.rows, [{ state: 'succeeded', n: ids.length }], 'one succeeded execution job per request')
  const deleted = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM deletion_items WHERE deletion_id = ANY($1::uuid[]) AND state = 'deleted'`,
    [ids],
  )
  t.equal(deleted.rows[0]?.n, items, 'every item deleted')
  const events = await db.query<{ digest: string; n: number }>(
    `SELECT digest, count(*)::int AS n FROM audit_events
     WHERE deletion_id = ANY($1::uuid[]) AND digest IS NOT NULL AND outcome = 'deleted'
     GROUP BY deletion_id, digest HAVING count(*) > 1`,
    [ids],
  )
  t.same(events.rows, [], 'no item was audited as deleted twice')
}

t.test(
  'terminating every connection while deletion jobs run fails operations, never the process',
  async (t) => {
    const { proxy, tags } = await slowRegistry(t, 24)
    const databaseUrl = await createTestDatabase(t)
    const dir = mkdtempSync(path.join(tmpdir(), 'regent-outage-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const server = await startServer(t, {
      DATABASE_URL: databaseUrl,
      REGENT_JWT_SECRET: TEST_JWT_SECRET,
      REGENT_CONFIG: configFile(dir, proxy.url),
    })
    await waitReady(server)
    const bearer = token(TEST_JWT_SECRET)
    const ids = await fileDeletions(server, bearer, tags, 6)

    const admin = new pg.Client({ connectionString: databaseUrl })
    await admin.connect()
    t.teardown(() => admin.end())
    const database = new URL(databaseUrl).pathname.slice(1)
    let terminated = 0
    for (let round = 0; round < 6; round++) {
      await sleep(400)
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = $1 AND pid <> pg_backend_pid()) AS killed`,
        [database],
      )
      terminated += rows[0]?.n ?? 0
    }
    t.ok(terminated >= 6, `${terminated} connections terminated while the jobs ran`)
    t.equal(server.child.exitCode, null, 'the process is still up')

    const states = await finalStates(server, bearer, ids)
    t.same(
      states,
      ids.map(() => 'succeeded'),
      'every request finished',
    )
    await waitReady(server)
    await assertFinishedOnce(t, admin, ids, tags.length)
    t.equal(server.child.exitCode, null, 'the process is still up')
    t.notMatch(server.output(), /shutting down after an error/)
  },
)

t.test(
  'a killed embedded postmaster is restarted: /readyz says 503, then 200, and the jobs finish once',
  async (t) => {
    const { proxy, tags } = await slowRegistry(t, 12)
    const dataDir = mkdtempSync(path.join(tmpdir(), 'regent-data-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const server = await startServer(t, {
      REGENT_DATA_DIR: dataDir,
      REGENT_CONFIG: configFile(dataDir, proxy.url),
    })
    await waitReady(server)
    const bearer = token(readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8').trim())
    const ids = await fileDeletions(server, bearer, tags, 4)

    await sleep(500)
    const postmaster = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
    process.kill(postmaster, 'SIGKILL')
    const seen: { status: number; ms: number }[] = []
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      const started = Date.now()
      const res = await fetch(url(server, '/readyz')).catch(() => undefined)
      seen.push({ status: res?.status ?? 0, ms: Date.now() - started })
      if (seen.some((s) => s.status === 503) && res?.status === 200) break
      await sleep(100)
    }
    const statuses = seen.map((s) => s.status)
    t.ok(statuses.includes(503), 'readyz answered 503 while the database was down')
    t.equal(statuses.at(-1), 200, 'and 200 once it was back')
    const slowest = Math.max(...seen.filter((s) => s.status === 503).map((s) => s.ms))
    t.ok(slowest < 5000, `each 503 came within its own timeout (slowest ${slowest} ms)`)
    t.match(server.output(), /embedded postgres restarted/)

    t.same(
      await finalStates(server, bearer, ids),
      ids.map(() => 'succeeded'),
      'every request finished',
    )
    const port = /"port":(\d+),"databaseDir"/.exec(server.output())?.[1]
    const password = readFileSync(path.join(dataDir, 'pg-password'), 'utf8').trim()
    const db = new pg.Client({
      connectionString: `postgres://regent:${encodeURIComponent(password)}@127.0.0.1:${port}/regent`,
    })
    await db.connect()
    t.teardown(() => db.end())
    await assertFinishedOnce(t, db, ids, tags.length)
    t.equal(server.child.exitCode, null, 'the process is still up')
  },
)

t.test('a postmaster that cannot be restarted twice ends the process with a message saying so', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'regent-data-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const server = await startServer(t, { REGENT_DATA_DIR: dataDir })
  await waitReady(server)
  const postmaster = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
  // Without its data folder the postmaster cannot start again.
  renameSync(path.join(dataDir, 'pg'), path.join(dataDir, 'pg-gone'))
  process.kill(postmaster, 'SIGKILL')
  const { code } = await server.exited
  t.equal(code, 1)
  t.match(
    server.output(),
    /regent: REGENT_EMBEDDED_POSTGRES_DOWN: the embedded PostgreSQL in .* could not be restarted \(2 attempts\)/,
  )
})

t.test(
  'a data folder the database user cannot reach stops the start with a message naming it and the fix',
  { skip: process.getuid?.() !== 0 && 'only as root does the database run as another user' },
  async (t) => {
    const home = mkdtempSync(path.join(tmpdir(), 'regent-home-'))
    t.teardown(() => rmSync(home, { recursive: true, force: true }))
    chmodSync(home, 0o755)
    mkdirSync(path.join(home, 'private'))
    chmodSync(path.join(home, 'private'), 0o700)
    const dataDir = path.join(home, 'private', '.regent')
    const server = await startServer(t, { REGENT_DATA_DIR: dataDir })
    const { code } = await server.exited
    t.equal(code, 1)
    const out = server.output()
    t.match(out, /regent: REGENT_EMBEDDED_DATA_DIR_UNREACHABLE: /)
    t.match(out, new RegExp(`${path.join(home, 'private')} is not open to it \\(mode 0700\\)`))
    t.match(out, /REGENT_DATA_DIR/)
    t.notMatch(out, /\n\s+at /, 'no stack trace')
  },
)
