import t from 'tap'
import { request } from 'undici'
import { MANIFEST_ACCEPT, RegistryClient } from '../../src/oci/index.js'
import { repositoryActivity } from '../../src/registry-events/index.js'
import { build } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { freePort, registryConfig, withRegistry } from '../helpers/registry.js'
import { waitFor } from '../helpers/wait.js'
import { createPolicy, EVENTS_SECRET, eventsRegistry, governance, preview } from './support.js'

/**
 * A real docker-registry configured to notify Regent: its push and pull events reach Regent and
 * change what keep-pulled-within keeps. Seconds stand in for days, and the evaluations' clock is
 * moved past them instead of waiting.
 */
t.test('notifications from a real registry change what keep-pulled-within keeps', async (t) => {
  const env = { REGENT_TEST_EVENTS_SECRET: EVENTS_SECRET }
  // The registry must know Regent's address before Regent knows the registry's: pick the port first.
  const port = await freePort()
  // Real time until the test sets it.
  let clock: Date | undefined
  const registry = await withRegistry(t, {
    notifications: {
      url: `http://127.0.0.1:${port}/v1/registries/local/events`,
      headers: { 'X-Regent-Event-Secret': EVENTS_SECRET },
      timeout: '2s',
      threshold: 2,
      backoff: '100ms',
      ignoredMediaTypes: ['application/octet-stream'],
    },
  })
  const app = await build(t, {
    config: {
      registries: [eventsRegistry(registry)],
      governance,
      browse: { tagTtlMs: 0 },
    },
    env,
    now: () => clock ?? new Date(),
  })
  await app.listen({ port, host: '127.0.0.1' })
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())

  const a = await pushImage(client, 'payments/pulls', { tags: ['a'] })
  const b = await pushImage(client, 'payments/pulls', { tags: ['b'] })
  const activity = () => repositoryActivity(app.db, 'local', 'payments/pulls')
  const pushedAt = (await waitFor(
    async () => (await activity()).tags.get('b')?.lastPushAt,
    15_000,
    'the push events',
  ))!

  const policy = await createPolicy(app, {
    name: 'pulled-lately',
    team: 'payments',
    registry: 'local',
    repositories: ['payments/pulls'],
    default: 'expire',
    rules: [{ select: { tagStatus: 'any' }, keep: { within: { age: '8s', by: 'pull' } } }],
  })

  // Just past 8 s after the last push (b's, after a's) by the registry's clock: both pushes are
  // older than the rule's window, and any pull the registry sees after b's push is younger.
  clock = new Date(pushedAt.getTime() + 8001)
  const before = await preview(app, policy.id)
  const verdict = (p: typeof before, tag: string) => p.verdicts.find((v) => v.tag === tag)
  t.equal(verdict(before, 'a')?.verdict, 'expire', 'nothing pulled: the push time stands in, and it is old')
  t.match(verdict(before, 'a')?.fact, /no pull recorded, push time stands in/)
  t.equal(verdict(before, 'b')?.verdict, 'expire')

  const pulled = await request(`${registry.url}/v2/payments/pulls/manifests/a`, {
    headers: { accept: MANIFEST_ACCEPT, 'user-agent': 'containerd/1.7.24' },
  })
  await pulled.body.dump()
  t.equal(pulled.statusCode, 200)
  const pulledAt = (await waitFor(
    async () => (await activity()).tags.get('a')?.lastPullAt,
    15_000,
    'the pull event',
  ))!
  t.ok(pulledAt > pushedAt, 'the registry saw the pull after the last push')

  const after = await preview(app, policy.id)
  t.equal(verdict(after, 'a')?.verdict, 'keep', 'the pulled tag is kept')
  t.match(verdict(after, 'a')?.fact, /pulled \d+s ago \(events\), keep within 8s/)
  t.equal(verdict(after, 'b')?.verdict, 'expire', 'the other is not')
  t.same(
    after.diff.noLongerExpired.map((e) => e.digest),
    [a.digest],
    'the preview says what the pull changed',
  )
  t.not(a.digest, b.digest)
  // Regent's own reads during the previews (HEADs, manifest GETs) were not taken for pulls.
  t.equal((await activity()).tags.get('b')?.lastPullAt, null)
})
