import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build, createTestDatabase } from '../helper.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { waitFor } from '../helpers/wait.js'
import {
  admin,
  complete,
  garbageCollect,
  gcAppConfig,
  pushLayered,
  randomLayer,
  requestDeletion,
  requestGc,
  waitForFileHook,
  waitForRun,
  waitForState,
} from './support.js'

t.test(
  'two replicas asked for a GC of one registry at once: one run, the other refused with REGENT_GC_ALREADY_RUNNING; deletions wait for the run',
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'regent-gc-exclusive-'))
    t.teardown(() => rm(work, { recursive: true, force: true }))
    const gate = path.join(work, 'go')
    const registry = await withRegistry(t)
    const client = new RegistryClient(registryConfig(registry))
    t.teardown(() => client.close())
    const databaseUrl = await createTestDatabase(t)
    // `before` holds the run until the test opens the gate, so the run is visibly in progress.
    const config = gcAppConfig(
      registry.url,
      {
        executor: garbageCollect(registry.configPath),
        storagePath: registry.storageDir,
        before: waitForFileHook(gate),
        quietPeriodMs: 3_600_000,
      },
      { worker: true },
    )
    const [one, two] = await Promise.all([
      build(t, { databaseUrl, config }),
      build(t, { databaseUrl, config }),
    ])
    const kept = await pushLayered(client, 'payments/api', 'kept', [randomLayer()])
    const doomed = await pushLayered(client, 'payments/api', 'doomed', [randomLayer()])

    const answers = await Promise.all([requestGc(one), requestGc(two)])
    t.same(answers.map((a) => a.statusCode).sort(), [201, 409], 'one accepted, one refused')
    const accepted = answers.find((a) => a.statusCode === 201)!.json()
    const refused = answers.find((a) => a.statusCode === 409)!.json()
    t.equal(refused.error.code, 'REGENT_GC_ALREADY_RUNNING')
    t.equal(refused.error.details.runId, accepted.id, 'the refusal names the run')

    const running = await waitForRun(one, accepted.id, [], 20_000, (run) =>
      run.steps.some((s) => s.name === 'before' && s.ok === null),
    )
    t.equal(running.state, 'running')
    const third = await requestGc(two, { dryRun: true })
    t.equal(third.statusCode, 409, 'a request while it runs is refused too, dry run or not')

    // A deletion requested during the run waits for it without spending its attempts.
    const deletion = await requestDeletion(two, {
      verb: 'delete-manifest',
      targets: [{ repository: 'payments/api', tag: 'doomed' }],
    })
    // Once its job has been tried and is queued again, the deletion has met the running GC.
    const job = await waitFor(
      async () => {
        const found = (await two.inject({ url: `/v1/jobs/${deletion.jobId}`, headers: admin })).json()
        return found.lastError && found.state === 'queued' ? found : undefined
      },
      20_000,
      'the deletion job to be tried and sent back',
    )
    t.match(job.lastError, /garbage collection of local is running/)
    t.equal(job.attempts, 0, 'waiting used no attempt')
    const waiting = (await two.inject({ url: `/v1/deletions/${deletion.id}`, headers: admin })).json()
    t.equal(waiting.state, 'queued', 'the deletion waits while the GC runs')
    t.ok(await client.headManifest('payments/api', doomed.digest), 'nothing was deleted yet')

    await writeFile(gate, '')
    const run = await waitForRun(one, accepted.id)
    t.equal(run.state, 'succeeded', 'the run succeeded', { log: run.log })
    const done = await waitForState(two, deletion.id)
    t.equal(done.state, 'succeeded', 'the deletion ran once the GC was over')
    t.notOk(await client.headManifest('payments/api', doomed.digest))
    t.same(await complete(client, kept), [])

    const db = new pg.Client({ connectionString: databaseUrl })
    db.on('error', () => {})
    await db.connect()
    t.teardown(() => db.end())
    const counts = await db.query<{ runs: number; jobs: number; started: number }>(
      `SELECT (SELECT count(*)::int FROM gc_runs) AS runs,
              (SELECT count(*)::int FROM jobs WHERE kind = 'gc.run') AS jobs,
              (SELECT count(*)::int FROM audit_events WHERE action = 'gc.started') AS started`,
    )
    // One more queued run exists: the deletion that finished after the GC asked for a coalesced one.
    t.same(counts.rows[0], { runs: 2, jobs: 2, started: 1 }, 'one run ran (the second is the coalesced one)')
    const coalesced = await db.query<{ trigger: string; state: string }>(
      `SELECT trigger, state FROM gc_runs WHERE id <> $1::uuid`,
      [accepted.id],
    )
    t.same(coalesced.rows, [{ trigger: 'coalesced', state: 'queued' }])
    const timing = await db.query<{ ran_after: boolean; restorable: boolean }>(
      `SELECT (SELECT min(occurred_at) FROM audit_events WHERE action = 'deletion.running' AND deletion_id = $2::uuid)
                >= r.finished_at AS ran_after,
              (SELECT bool_and(restorable) FROM deletion_items WHERE deletion_id = $2::uuid) AS restorable
       FROM gc_runs r WHERE r.id = $1::uuid`,
      [accepted.id, deletion.id],
    )
    t.same(
      timing.rows[0],
      { ran_after: true, restorable: true },
      'it started after the run ended, so it stays restorable',
    )
  },
)
