import t, { type Test } from 'tap'
import { build } from '../helper.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { digestOf } from './support.js'

const TOKEN = 'inventory-token-0123456789'

async function setup(t: Test) {
  const inventory = await startCaptureServer()
  t.teardown(() => inventory.stop())
  const app = await build(t, {
    config: {
      registries: [{ name: 'prod', url: 'https://registry.example.com', aliases: ['mirror.example.com'] }],
      usage: {
        sources: [
          {
            name: 'ecs',
            kind: 'inventory',
            refreshIntervalMs: 60000,
            staleAfterMs: '10m',
            inventory: {
              url: `${inventory.url}/regent/images?key=secret-in-query`,
              tokenEnv: 'REGENT_TEST_INVENTORY_TOKEN',
            },
          },
        ],
      },
    },
    env: { REGENT_TEST_INVENTORY_TOKEN: TOKEN },
  })
  return { app, inventory }
}

t.test(
  'an inventory document: images by tag and digest, with the bearer token from the environment',
  async (t) => {
    const { app, inventory } = await setup(t)
    inventory.respond({
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        images: [
          {
            image: 'registry.example.com/payments/api:1.4',
            cluster: 'ecs-prod',
            namespace: 'payments',
            kind: 'service',
            name: 'api',
            container: 'app',
          },
          { image: `mirror.example.com/payments/worker@${digestOf(7)}`, kind: 'vm', name: 'batch-01' },
          { image: 'quay.io/other/thing:1' },
        ],
      }),
    })
    const result = await app.usage.sync('ecs')
    t.equal(result.outcome, 'succeeded', result.error ?? '')
    t.same(
      {
        images: result.counts.images,
        references: result.counts.references,
        unmatched: result.counts.unmatched,
      },
      { images: 3, references: 2, unmatched: 1 },
    )
    t.equal(inventory.requests[0]?.headers.authorization, `Bearer ${TOKEN}`)

    const byTag = (
      await app.usage.usageOf('prod', 'payments/api', [{ digest: digestOf(1), tags: ['1.4'] }])
    ).get(digestOf(1))
    t.equal(app.usage.describe(byTag!), 'referenced by tag 1.4 in ecs-prod/payments service/api')
    const byDigest = (
      await app.usage.usageOf('prod', 'payments/worker', [{ digest: digestOf(7), tags: [] }])
    ).get(digestOf(7))
    t.equal(
      app.usage.describe(byDigest!),
      'referenced by digest in ecs vm/batch-01',
      'the cluster defaults to the source name',
    )

    // The deletion planner asks for a thousand tags at once: a fixed number of statements, sent
    // together (usage's own, and the pulls the registry events feature knows), not one per tag.
    const query = app.db.query.bind(app.db)
    let statements = 0
    app.db.query = ((...args: Parameters<typeof query>) => {
      statements++
      return query(...args)
    }) as typeof app.db.query
    const many = Array.from({ length: 1000 }, (_, i) => ({
      digest: digestOf(1000 + i),
      tags: [`t${i}`, '1.4'],
    }))
    const verdicts = await app.usage.usageOf('prod', 'payments/api', many)
    app.db.query = query
    t.equal(statements, 2, 'two statements, sent at once, for 1,000 candidates')
    t.equal(verdicts.size, 1000)
    t.equal(verdicts.get(digestOf(1999))?.status, 'in-use', 'each candidate with the tag 1.4 is in use')
  },
)

t.test(
  'a document of the wrong shape fails the sync, names the problem, and keeps the last picture',
  async (t) => {
    const { app, inventory } = await setup(t)
    inventory.respond({ body: JSON.stringify({ images: [{ image: 'registry.example.com/a/b:1' }] }) })
    t.equal((await app.usage.sync('ecs')).outcome, 'succeeded')
    inventory.respond({ body: JSON.stringify({ images: [{ name: 'no image' }] }) })
    const bad = await app.usage.sync('ecs')
    t.equal(bad.outcome, 'failed')
    t.match(bad.error, /not an inventory document: \/images\/0/)
    t.notMatch(bad.error, /secret-in-query/, 'the query string is not repeated')
    inventory.respond({ status: 500, body: 'oops' })
    t.match((await app.usage.sync('ecs')).error, /: 500$/)
    const still = (await app.usage.usageOf('prod', 'a/b', [{ digest: digestOf(2), tags: ['1'] }])).get(
      digestOf(2),
    )
    t.equal(still?.status, 'in-use')
  },
)

t.test('a token variable that is not set stops the start, naming the key', async (t) => {
  await t.rejects(
    build(t, {
      config: {
        usage: {
          sources: [
            {
              name: 'ecs',
              kind: 'inventory',
              inventory: { url: 'https://x.example.com', tokenEnv: 'NOPE_TOKEN' },
            },
          ],
        },
      },
      env: {},
    }),
    /usage\.sources\[0\]\.inventory\.tokenEnv: the environment variable NOPE_TOKEN is not set/,
  )
  await t.rejects(
    build(t, { config: { usage: { sources: [{ name: 'k', kind: 'inventory' }] } } }),
    /usage\.sources\[0\]\.inventory: required for kind inventory/,
  )
})
