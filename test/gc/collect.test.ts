import t from 'tap'
import { pushIndex } from '../helpers/fixtures.js'
import {
  admin,
  blobFile,
  complete,
  getRunView,
  hasBlobData,
  type LayeredImage,
  paula,
  pushLayered,
  randomLayer,
  requestDeletion,
  requestGc,
  setupGc,
  storageListing,
  totalBytes,
  waitForRun,
  waitForState,
} from './support.js'

/** Blobs only `gone` uses (not in `kept`): what a GC must remove, manifests included. */
function onlyUsedBy(gone: LayeredImage[], kept: LayeredImage[]): Map<string, number> {
  const keptDigests = new Set(
    kept.flatMap((i) => [i.digest, i.config.digest, ...i.layers.map((l) => l.digest)]),
  )
  const out = new Map<string, number>()
  for (const image of gone) {
    for (const blob of [{ digest: image.digest, size: image.bytes.length }, image.config, ...image.layers]) {
      if (!keptDigests.has(blob.digest)) out.set(blob.digest, blob.size)
    }
  }
  return out
}

async function pushScenario(client: Parameters<typeof pushLayered>[0]) {
  const base = randomLayer(8192)
  const kept = [
    await pushLayered(client, 'payments/api', 'keep-1', [base, randomLayer(3000)]),
    await pushLayered(client, 'payments/api', 'keep-2', [base, randomLayer(3500)]),
    await pushLayered(client, 'payments/web', 'keep', [base, randomLayer(2500)]),
  ]
  const gone = [
    await pushLayered(client, 'payments/api', 'gone-1', [base, randomLayer(5000), randomLayer(1200)]),
    await pushLayered(client, 'payments/api', 'gone-2', [base, randomLayer(6000)]),
  ]
  return { base: kept[0]!.layers[0]!, kept, gone }
}

async function deleteThroughRegent(app: Parameters<typeof requestDeletion>[0], gone: LayeredImage[]) {
  const request = await requestDeletion(app, {
    verb: 'delete-manifest',
    targets: gone.map((image) => ({ repository: image.repository, tag: image.tag })),
  })
  const done = await waitForState(app, request.id)
  if (done.state !== 'succeeded') throw new Error(`deletion ended ${done.state}`)
  return request
}

t.test(
  'GC after deleting images that share a base layer frees exactly the blobs only they used; everything left is whole',
  async (t) => {
    const { app, client, registry } = await setupGc(t)
    const { base, kept, gone } = await pushScenario(client)
    const expected = onlyUsedBy(gone, kept)
    const expectedBytes = [...expected.values()].reduce((a, b) => a + b, 0)

    await deleteThroughRegent(app, gone)
    const beforeGc = storageListing(registry.storageDir)
    const res = await requestGc(app)
    t.equal(res.statusCode, 201, 'the run is queued', { body: res.body })
    const run = await waitForRun(app, res.json().id)
    t.equal(run.state, 'succeeded', 'the run succeeded', { log: run.log })
    const afterGc = storageListing(registry.storageDir)

    const freed = totalBytes(beforeGc) - totalBytes(afterGc)
    t.comment(
      `storage ${totalBytes(beforeGc)} → ${totalBytes(afterGc)} bytes: freed ${freed}, blobs only the deleted images used: ${expectedBytes} bytes in ${expected.size} blobs`,
    )
    t.equal(
      freed,
      expectedBytes,
      'the folder shrank by exactly the bytes of the blobs only the deleted images used',
    )
    const removed = [...beforeGc.keys()].filter((file) => !afterGc.has(file)).sort()
    t.same(
      removed,
      [...expected.keys()].map((digest) => blobFile('', digest).replace(/^\//, '')).sort(),
      'the files removed are exactly those blobs',
    )
    t.equal(run.bytesBefore, totalBytes(beforeGc), 'Regent measured the same before')
    t.equal(run.bytesAfter, totalBytes(afterGc), 'and after')
    t.equal(run.bytesFreed, expectedBytes)
    t.equal(run.eligible.blobs, expected.size, 'the dry run counted them')
    t.equal(run.eligible.bytes, expectedBytes, 'and sized them')
    t.equal(run.collected.blobs, expected.size)
    t.same(
      run.steps.map((s) => [s.name, s.ok]),
      [
        ['wait-deletions', true],
        ['wait', true],
        ['dry-run', true],
        ['gc', true],
        ['verify', true],
      ],
    )
    t.match(run.steps.find((s) => s.name === 'verify')?.output, /checked 3 of 3 tag\(s\)/)

    t.ok(hasBlobData(registry.storageDir, base.digest), 'the shared base layer is still on disk')
    for (const image of kept)
      t.same(await complete(client, image), [], `${image.repository}:${image.tag} is whole`)
    for (const image of gone)
      t.notOk(await client.headManifest(image.repository, image.digest), `${image.tag} is gone`)

    const audit = (await app.inject({ url: '/v1/audit?action=gc.finished', headers: admin })).json().items
    t.equal(audit.length, 1)
    t.equal(audit[0].details.bytesFreed, expectedBytes, 'the audit event carries the space freed')
    const actions = (await app.inject({ url: '/v1/audit?registry=local', headers: admin }))
      .json()
      .items.map((e: { action: string }) => e.action)
      .filter((a: string) => a.startsWith('gc.'))
      .reverse()
    // The deletion queued a coalesced run (quiet period: an hour); the admin's request took it over.
    t.same(actions, ['gc.requested', 'gc.requested', 'gc.started', 'gc.restore_window_closed', 'gc.finished'])
    const requested = (await app.inject({ url: '/v1/audit?action=gc.requested', headers: admin })).json()
      .items
    t.same(
      requested.map((e: { details: { trigger: string; tookOver?: string; runId: string } }) => [
        e.details.trigger,
        e.details.tookOver ?? null,
        e.details.runId,
      ]),
      [
        ['manual', 'coalesced', run.id],
        ['coalesced', null, run.id],
      ],
      'one run: the coalesced one, taken over by the manual request',
    )
    const job = (await app.inject({ url: `/v1/jobs/${run.jobId}`, headers: admin })).json()
    t.equal(job.state, 'succeeded')
    t.equal(job.kind, 'gc.run')

    const listed = (await app.inject({ url: '/v1/gc-runs?registry=local', headers: paula })).json()
    t.equal(listed.items.length, 1, 'a requester can follow runs')
    t.notOk('log' in listed.items[0], 'lists leave the log out')
    t.match(listed.items[0].summary, /succeeded: freed/)
  },
)

t.test('a dry run changes nothing on disk and reports exactly what the real run then removes', async (t) => {
  const { app, client, registry } = await setupGc(t)
  const { kept, gone } = await pushScenario(client)
  const expected = onlyUsedBy(gone, kept)
  const expectedBytes = [...expected.values()].reduce((a, b) => a + b, 0)
  await deleteThroughRegent(app, gone)

  const before = storageListing(registry.storageDir)
  const dry = await requestGc(app, { dryRun: true })
  t.equal(dry.statusCode, 201, 'the dry run is queued', { body: dry.body })
  const run = await waitForRun(app, dry.json().id)
  t.equal(run.state, 'succeeded', 'the dry run succeeded', { log: run.log })
  t.same(storageListing(registry.storageDir), before, 'every file is still there with the same size')
  t.equal(run.dryRun, true)
  t.same(
    run.steps.map((s) => s.name),
    ['dry-run'],
    'a dry run needs no read-only window',
  )
  t.equal(run.eligible.blobs, expected.size, `it reports ${expected.size} blobs`)
  t.equal(run.eligible.bytes, expectedBytes, `of ${expectedBytes} bytes`)
  t.ok(run.eligible.share! > 0 && run.eligible.share! < 1, `a share of ${run.eligible.share}`)
  t.equal(run.bytesFreed, 0)
  t.match(run.summary, /dry run.*nothing removed/)
  const listed = new Set([...run.log!.matchAll(/blob eligible for deletion: (\S+)/g)].map((m) => m[1]))
  t.same([...listed].sort(), [...expected.keys()].sort(), 'the log lists exactly those blobs')

  const real = await waitForRun(app, (await requestGc(app)).json().id)
  t.equal(real.state, 'succeeded', 'the real run succeeded', { log: real.log })
  t.equal(real.bytesFreed, run.eligible.bytes, 'the real run removed what the dry run reported')
  for (const digest of listed) t.notOk(hasBlobData(registry.storageDir, digest!), `${digest} removed`)

  // GraphQL reads the same runs.
  const gql = await app.inject({
    method: 'POST',
    url: '/graphql',
    headers: admin,
    payload: {
      query: `{ gcRuns(registry: "local") { nodes { id dryRun state eligible { blobs bytes } } } }`,
    },
  })
  const nodes = gql.json().data.gcRuns.nodes
  t.same(
    nodes.map((n: { dryRun: boolean; eligible: { bytes: number } }) => [n.dryRun, n.eligible.bytes]),
    [
      [false, expectedBytes],
      [true, expectedBytes],
    ],
  )
})

t.test(
  '--delete-untagged is refused at the dry run when a tagged index still lists untagged children (distribution #3004)',
  async (t) => {
    const { app, client, registry } = await setupGc(t)
    const index = await pushIndex(client, 'payments/multi', { tags: ['latest'] })
    const before = storageListing(registry.storageDir)
    const res = await requestGc(app, { deleteUntagged: true })
    const run = await waitForRun(app, res.json().id)
    t.equal(run.state, 'failed')
    t.equal(run.failedStep, 'dry-run')
    t.match(run.error, /tagged indexes still list.*#3004/)
    t.same(storageListing(registry.storageDir), before, 'nothing was collected')
    t.notOk(
      run.steps.some((s) => s.name === 'gc'),
      'the GC step never ran',
    )
    for (const child of index.children) {
      t.ok(
        await client.headManifest('payments/multi', child.digest),
        `child ${child.platform.architecture} is still there`,
      )
    }
    const view = await getRunView(app, run.id)
    t.match(view.summary, /failed at dry-run/)
  },
)
