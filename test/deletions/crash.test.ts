import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build, createTestDatabase, TEST_JWT_SECRET } from '../helper.js'
import { compiledFixture, runNode } from '../helpers/child.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { waitFor } from '../helpers/wait.js'
import { admin, fastJobs, governance, requestDeletion, waitForState } from './support.js'

/**
 * The worker process is killed with SIGKILL before the DELETE is sent, while it
 * is in flight (the registry has acted, the answer has not arrived), and after the 202 but before
 * the outcome is committed. A fresh worker then brings every item to exactly one terminal state
 * with exactly one deletion audit event, within the lease plus a margin.
 */
const fixture = compiledFixture(new URL('./fixtures/crashing-executor.ts', import.meta.url))

async function crashAt(t: Test, point: 'before-delete' | 'in-flight' | 'after-delete') {
  const registry = await withRegistry(t)
  const proxy = await startFaultProxy(registry.url)
  t.teardown(proxy.stop)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const image = await pushImage(client, 'payments/api', { tags: ['victim'] })
  const keep = await pushImage(client, 'payments/api', { tags: ['bystander'] })
  const databaseUrl = await createTestDatabase(t)
  const config = {
    databaseUrl,
    logLevel: 'silent',
    auth: { jwtSecret: TEST_JWT_SECRET },
    registries: [registryConfig(proxy, { name: 'local', retries: 0 })],
    governance,
    jobs: { ...fastJobs, concurrency: 1 },
  }
  const api = await build(t, { databaseUrl, config: { ...config, worker: false } })
  const request = await requestDeletion(api, {
    verb: 'delete-manifest',
    targets: [{ repository: 'payments/api', tag: 'victim' }],
  })
  if (point === 'in-flight')
    proxy.addFault({
      method: 'DELETE',
      path: new RegExp(image.digest),
      fault: { kind: 'delay-response', ms: 60_000 },
    })

  const { child, output, exited } = runNode([fixture], {
    env: { ...process.env, CRASH_CONFIG: JSON.stringify({ ...config, worker: true }), CRASH_AT: point },
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const deadline = Date.now() + 30_000
  const reached = () =>
    point === 'in-flight'
      ? proxy.count('DELETE', new RegExp(image.digest)) > 0
      : output().includes(`at ${point}`)
  while (!reached()) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the worker never reached ${point}:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  if (point === 'in-flight') {
    // The proxy forwarded the DELETE and holds the answer back: kill once the registry has acted.
    await waitFor(
      async () => !(await client.headManifest('payments/api', image.digest)),
      30_000,
      'the DELETE',
      50,
    )
  }
  child.kill('SIGKILL')
  await exited
  const killedAt = Date.now()
  proxy.clearFaults()

  const registryAfterKill = await client.headManifest('payments/api', image.digest)
  const recovery = await build(t, { databaseUrl, config: { ...config, worker: true } })
  const done = await waitForState(recovery, request.id, ['succeeded', 'partially_failed', 'failed'], 20_000)
  const took = Date.now() - killedAt

  t.equal(done.state, 'succeeded')
  t.same(done.progress, { total: 1, pending: 0, deleted: 1, skipped: 0, failed: 0 }, 'one terminal state')
  t.notOk(await client.headManifest('payments/api', image.digest), 'the manifest is gone')
  t.ok(await client.headManifest('payments/api', keep.digest), 'the bystander is untouched')
  const events = (await recovery.inject({ url: `/v1/audit?deletionId=${request.id}`, headers: admin })).json()
    .items
  t.equal(
    events.filter((e: { action: string }) => e.action === 'manifest.deleted').length,
    1,
    'exactly one deletion audit event',
  )
  // Lease-bound, not hours; the margin covers building the recovery app on a loaded machine.
  t.ok(took < fastJobs.leaseMs + 15_000, `recovered ${took} ms after the kill (lease ${fastJobs.leaseMs} ms)`)
  return { registryAfterKill, events, deletes: proxy.count('DELETE', new RegExp(image.digest)) }
}

t.test('killed before the DELETE is sent: the next worker deletes it once', async (t) => {
  const { registryAfterKill, deletes } = await crashAt(t, 'before-delete')
  t.ok(registryAfterKill, 'nothing had been deleted when the process died')
  t.equal(deletes, 1, 'one DELETE in all')
})

t.test('killed with the DELETE in flight: the next worker takes the 404 as its own success', async (t) => {
  const { registryAfterKill, events } = await crashAt(t, 'in-flight')
  t.notOk(registryAfterKill, 'the registry had acted on the DELETE')
  const deleted = events.find((e: { action: string }) => e.action === 'manifest.deleted')
  t.equal(deleted.outcome, 'already_deleted')
})

t.test('killed after the 202 but before the commit: no second deletion event', async (t) => {
  const { registryAfterKill, events } = await crashAt(t, 'after-delete')
  t.notOk(registryAfterKill)
  t.equal(events.filter((e: { action: string }) => e.action.startsWith('manifest.')).length, 1)
})
