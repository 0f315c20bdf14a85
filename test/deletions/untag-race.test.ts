import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build, createTestDatabase, TEST_JWT_SECRET } from '../helper.js'
import { compiledFixture, runNode } from '../helpers/child.js'
import { type PushedImage, pushImage, tagManifest } from '../helpers/fixtures.js'
import { leftoverPlaceholders, registryConfig, type TestRegistry, withRegistry } from '../helpers/registry.js'
import { fastJobs, waitForState } from './support.js'

/**
 * Many untags at once in one repository, on distribution 2.8 (no tag DELETE: each untag pushes a
 * placeholder onto the tag and deletes it by digest). Deletes racing inside one repository make the
 * registry answer 500 with tags left listed but resolving to nothing; Regent writes to one
 * repository one at a time, so none of that happens, and a retried untag reuses its own
 * placeholder, so a killed worker leaves none behind.
 */

const ROUNDS = Number(process.env.REGENT_TEST_UNTAG_ROUNDS ?? 10)
/** Rounds run at once, each in a repository of its own (the race is inside one repository). */
const PARALLEL_ROUNDS = 5
const TAGS = 60
const UNTAGS = 40
const requester = authHeaders({ sub: 'rita', groups: ['payments'], roles: ['requester'] })
const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
  ],
}
const jobs = { ...fastJobs, concurrency: 8, registryConcurrency: 8 }

/** 60 tags on 20 images (three tags each, so every untag has siblings that must stay). */
async function fill(client: RegistryClient, repository: string) {
  const byTag = new Map<string, PushedImage>()
  for (let i = 0; i < TAGS / 3; i++) {
    const tags = [0, 1, 2].map((k) => `t${String(i * 3 + k).padStart(2, '0')}`)
    const image = await pushImage(client, repository, { tags: tags.slice(0, 1), layers: 1 })
    await tagManifest(client, repository, image, tags.slice(1))
    for (const tag of tags) byTag.set(tag, image)
  }
  return byTag
}

function pick(tags: string[], n: number): string[] {
  const shuffled = [...tags].sort(() => Math.random() - 0.5)
  return shuffled.slice(0, n).sort()
}

async function untagAll(app: FastifyInstance, repository: string, tags: string[]) {
  return Promise.all(
    tags.map(async (tag) => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/deletions',
        headers: requester,
        payload: { registry: 'local', verb: 'untag', reason: 'race', targets: [{ repository, tag }] },
      })
      if (res.statusCode !== 201) throw new Error(`untag ${tag} refused: ${res.statusCode} ${res.body}`)
      return res.json().id as string
    }),
  )
}

/** What the repository must look like after the untags: exactly the others left, all resolving. */
async function check(
  t: Test,
  client: RegistryClient,
  registry: TestRegistry,
  repository: string,
  byTag: Map<string, PushedImage>,
  untagged: string[],
) {
  const listed: string[] = []
  for await (const tag of client.tags(repository)) listed.push(tag)
  const expected = [...byTag.keys()].filter((tag) => !untagged.includes(tag)).sort()
  t.same(listed.sort(), expected, `${repository}: every untagged tag is gone from tags/list, no other`)
  let dangling = 0
  let wrong = 0
  for (const tag of listed) {
    const head = await client.headManifest(repository, tag)
    if (!head) dangling++
    else if (head.digest !== byTag.get(tag)?.digest) wrong++
  }
  t.equal(dangling, 0, `${repository}: no tag is listed but resolves to nothing`)
  t.equal(wrong, 0, `${repository}: every other tag resolves to its own image`)
  t.same(await leftoverPlaceholders(registry, repository), [], `${repository}: no placeholder left behind`)
}

async function setup(t: Test, worker: boolean) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const databaseUrl = await createTestDatabase(t)
  const config = {
    registries: [registryConfig(registry, { name: 'local', retries: 0 })],
    governance,
    jobs,
    worker,
  }
  const app = await build(t, { databaseUrl, config })
  return { registry, client, app, databaseUrl, config }
}

t.test(`${UNTAGS} concurrent untags among ${TAGS} tags of one repository, ${ROUNDS} times`, async (t) => {
  const { registry, client, app } = await setup(t, true)
  const round = async (n: number) => {
    const repository = `payments/race-${n}`
    const byTag = await fill(client, repository)
    const untagged = pick([...byTag.keys()], UNTAGS)
    const ids = await untagAll(app, repository, untagged)
    for (const id of ids) {
      const done = await waitForState(app, id, ['succeeded', 'partially_failed', 'failed'], 120_000)
      if (done.state !== 'succeeded') t.fail(`${id}: ${done.state} ${done.summary}`)
    }
    await check(t, client, registry, repository, byTag, untagged)
  }
  const waiting = Array.from({ length: ROUNDS }, (_, n) => n)
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL_ROUNDS, ROUNDS) }, async () => {
      for (let n = waiting.shift(); n !== undefined; n = waiting.shift()) await round(n)
    }),
  )
})

t.test(
  'the same with the worker killed mid-run: a fresh worker finishes, nothing dangles or is left over',
  async (t) => {
    const { registry, client, app, databaseUrl, config } = await setup(t, false)
    const repository = 'payments/killed'
    const byTag = await fill(client, repository)
    const untagged = pick([...byTag.keys()], UNTAGS)
    const ids = await untagAll(app, repository, untagged)

    const fixture = compiledFixture(new URL('./fixtures/crashing-executor.ts', import.meta.url))
    const { child, output, exited } = runNode([fixture], {
      env: {
        ...process.env,
        CRASH_CONFIG: JSON.stringify({
          ...config,
          databaseUrl,
          logLevel: 'silent',
          auth: { jwtSecret: TEST_JWT_SECRET },
          worker: true,
        }),
        CRASH_AT: 'nowhere',
      },
    })
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    // Kill it once some untags are done and others are under way.
    const deadline = Date.now() + 120_000
    for (;;) {
      const { rows } = await app.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM deletion_items WHERE state = 'deleted'",
      )
      if ((rows[0]?.n ?? 0) >= 10) break
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`the worker never got going:\n${output()}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    child.kill('SIGKILL')
    await exited

    const worker = await build(t, { databaseUrl, config: { ...config, worker: true } })
    for (const id of ids) {
      const done = await waitForState(worker, id, ['succeeded', 'partially_failed', 'failed'], 120_000)
      t.equal(done.state, 'succeeded', `${id} succeeded after the kill`)
    }
    await check(t, client, registry, repository, byTag, untagged)
    const events = await worker.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'tag.untagged'",
    )
    t.equal(events.rows[0]?.n, UNTAGS, 'one untag event per tag, none twice')
  },
)
