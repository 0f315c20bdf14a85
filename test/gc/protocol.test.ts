import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build } from '../helper.js'
import { sha256 } from '../helpers/fixtures.js'
import { registryConfig, startRegistry, type TestRegistry, withRegistry } from '../helpers/registry.js'
import {
  admin,
  complete,
  garbageCollect,
  gcAppConfig,
  hasBlobData,
  postHook,
  pushLayered,
  REGISTRY_BIN,
  randomLayer,
  repush,
  requestDeletion,
  requestGc,
  setupGc,
  startFront,
  storageListing,
  waitForRun,
  waitForState,
} from './support.js'

const execFileAsync = promisify(execFile)

t.test(
  'a push that starts while a GC is due waits for it (refused in the read-only window, whole afterwards); collected images re-push whole',
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'regent-gc-protocol-'))
    t.teardown(() => rm(work, { recursive: true, force: true }))
    const storageDir = path.join(work, 'storage')
    // distribution's default sample config caches blob descriptors in memory (#1803, #4569).
    let registry: TestRegistry = await startRegistry({ storageDir, blobDescriptorCache: true })
    const front = await startFront(registry.port)
    t.teardown(async () => {
      await front.stop()
      await registry.stop()
    })
    const gcConfigPath = path.join(work, 'gc-config.yml')
    await copyFile(registry.configPath, gcConfigPath)

    // The `before` and `after` commands ask the test to restart the registry read-only and back,
    // over the same storage and behind the same address: the practical protocol for distribution 2.8.
    const events: { what: string; at: number }[] = []
    let openWindow = () => {}
    const windowOpen = new Promise<void>((resolve) => {
      openWindow = resolve
    })
    let refuseOnce = () => {}
    const pushRefused = new Promise<void>((resolve) => {
      refuseOnce = resolve
    })
    const restart = async (readOnly: boolean) => {
      front.retarget(null)
      await registry.stop()
      registry = await startRegistry({ storageDir, readOnly, blobDescriptorCache: true })
      front.retarget(registry.port)
      events.push({ what: readOnly ? 'read-only' : 'read-write', at: Date.now() })
    }
    const control = http.createServer((req, res) => {
      req.resume()
      const readOnly = req.url === '/before'
      // The window closes once a push has been refused in it (or after 30 s, and the test fails):
      // the test holds it open rather than guessing how long a push takes to start.
      const windowDone = readOnly
        ? Promise.resolve()
        : Promise.race([pushRefused, sleep(30_000, undefined, { ref: false })])
      windowDone
        .then(() => restart(readOnly))
        .then(
          () => {
            res.writeHead(200).end()
            if (readOnly) openWindow()
          },
          (err: Error) => res.writeHead(500).end(err.message),
        )
    })
    await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => control.close(() => resolve())))
    const controlUrl = `http://127.0.0.1:${(control.address() as { port: number }).port}`

    const config = gcAppConfig(
      front.url,
      {
        executor: garbageCollect(gcConfigPath),
        before: postHook(`${controlUrl}/before`),
        after: postHook(`${controlUrl}/after`),
        waitMs: 0,
        storagePath: storageDir,
        quietPeriodMs: 3_600_000,
      },
      { worker: true },
    )
    const app = await build(t, { config })
    const client = new RegistryClient(registryConfig(front))
    t.teardown(() => client.close())

    const base = randomLayer(4096)
    const kept = await pushLayered(client, 'payments/api', 'kept', [base, randomLayer(1500)])
    const collected = await pushLayered(client, 'payments/api', 'collected', [base, randomLayer(3000)])
    const request = await requestDeletion(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'collected' }],
    })
    t.equal((await waitForState(app, request.id)).state, 'succeeded')
    // A push already under way when the GC is requested: one layer uploaded, manifest not yet sent
    // (the shape of distribution #3045: a blob no manifest references yet).
    const halfLayer = randomLayer(2500)
    await client.pushBlob('payments/api', halfLayer)

    const res = await requestGc(app)
    t.equal(res.statusCode, 201)
    await windowOpen
    // A push that starts in the window retries until the registry takes it.
    const attempts: { at: number; error?: string }[] = []
    const lateLayers = [base, randomLayer(2000)]
    const late = (async () => {
      for (;;) {
        try {
          const image = await pushLayered(client, 'payments/api', 'late', lateLayers, 'late')
          attempts.push({ at: Date.now() })
          return image
        } catch (err) {
          attempts.push({ at: Date.now(), error: (err as Error).message })
          refuseOnce()
          await sleep(100)
        }
      }
    })()
    const run = await waitForRun(app, res.json().id)
    const lateImage = await late
    t.equal(run.state, 'succeeded', 'the run succeeded', { log: run.log })
    t.same(
      run.steps.map((s) => [s.name, s.ok]),
      [
        ['wait-deletions', true],
        ['before', true],
        ['wait', true],
        ['dry-run', true],
        ['gc', true],
        ['after', true],
        ['verify', true],
      ],
    )
    t.same(
      events.map((e) => e.what),
      ['read-only', 'read-write'],
    )

    const gcStep = run.steps.find((s) => s.name === 'gc')!
    const refused = attempts.filter((a) => a.error)
    const pushed = attempts.find((a) => !a.error)!
    t.ok(
      refused.length > 0,
      `the push was refused ${refused.length} time(s) in the window: ${refused[0]?.error}`,
    )
    t.ok(
      pushed.at >= Date.parse(gcStep.finishedAt!) && pushed.at >= events[1]!.at,
      'it went through only after the GC and the return to read-write',
    )
    t.same(await complete(client, lateImage), [], 'the image pushed in the window is whole')
    t.same(await complete(client, kept), [], 'the kept image is whole')

    // The half-finished push: its unreferenced layer was collected, and because `after` restarted
    // the registry the client is told so and uploads it again.
    t.notOk(hasBlobData(storageDir, sha256(halfLayer)), 'the layer of the interrupted push was collected')
    const half = await pushLayered(client, 'payments/api', 'half', [halfLayer])
    t.same(await complete(client, half), [], 'finishing the interrupted push gives a whole image')

    // Re-pushing the collected image: its own blobs are really uploaded again (not "already exists").
    t.notOk(hasBlobData(storageDir, collected.layers[1]!.digest), 'its own layer was collected')
    const again = await repush(client, collected)
    t.equal(again.uploaded, 2, 'its layer and config were uploaded again; the shared base was not')
    t.same(await complete(client, collected), [], 're-pushed whole')
    t.ok(hasBlobData(storageDir, collected.layers[1]!.digest), 'and its data is on disk')
  },
)

t.test(
  'without a restart after GC the blob descriptor cache hides collected blobs (distribution #1803): why `after` restarts',
  async (t) => {
    const registry = await withRegistry(t, { blobDescriptorCache: true })
    const client = new RegistryClient(registryConfig(registry))
    t.teardown(() => client.close())
    const image = await pushLayered(client, 'payments/api', 'x', [randomLayer(3000)])
    await client.deleteManifest('payments/api', image.digest)
    await execFileAsync(REGISTRY_BIN, ['garbage-collect', registry.configPath])
    t.notOk(hasBlobData(registry.storageDir, image.layers[0]!.digest), 'the layer is gone from disk')
    const again = await repush(client, image)
    t.equal(again.uploaded, 0, 'yet the registry answers HEAD 200 for every blob, so nothing is uploaded')
    t.not((await complete(client, image)).length, 0, 'and the "re-pushed" image is broken')
  },
)

t.test(
  'a failing `before` command: no GC ran, `after` still ran, the run is failed naming the step',
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'regent-gc-hooks-'))
    t.teardown(() => rm(work, { recursive: true, force: true }))
    const marker = path.join(work, 'after-ran')
    const { app, client, registry } = await setupGc(t, {
      gc: () => ({ before: ['false'], after: ['touch', marker] }),
    })
    const image = await pushLayered(client, 'payments/api', 'doomed', [randomLayer(3000)])
    const request = await requestDeletion(app, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'doomed' }],
    })
    await waitForState(app, request.id)
    const before = storageListing(registry.storageDir)

    const res = await requestGc(app)
    const run = await waitForRun(app, res.json().id)
    t.equal(run.state, 'failed')
    t.equal(run.failedStep, 'before')
    t.match(run.error, /exited with status 1/)
    t.match(run.summary, /failed at before/)
    t.ok(existsSync(marker), 'the after command ran')
    t.same(
      run.steps.map((s) => [s.name, s.ok]),
      [
        ['wait-deletions', true],
        ['before', false],
        ['after', true],
      ],
      'neither the dry run nor the GC ran',
    )
    t.same(storageListing(registry.storageDir), before, 'nothing on disk changed')
    t.ok(
      hasBlobData(registry.storageDir, image.layers[0]!.digest),
      'the deleted image’s blobs are still there',
    )
    const job = (await app.inject({ url: `/v1/jobs/${run.jobId}`, headers: admin })).json()
    t.equal(job.state, 'failed', 'the job failed for good, not retried')
    t.equal(job.attempts, 1)
    const failed = (await app.inject({ url: '/v1/audit?action=gc.failed', headers: admin })).json().items
    t.equal(failed.length, 1)
    t.equal(failed[0].details.failedStep, 'before')
    // Nothing was collected, so the deletion can still be undone.
    const restored = await app.inject({
      method: 'POST',
      url: `/v1/deletions/${request.id}/restore`,
      headers: admin,
    })
    t.equal(restored.statusCode, 200, 'the restore window is still open')
  },
)
