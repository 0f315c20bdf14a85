import t from 'tap'
import { enqueueJob } from '../../src/jobs/sql.js'
import { compiledFixture, runNode } from '../helpers/child.js'
import { deferred, waitFor } from '../helpers/wait.js'
import { jobState, jobsConfig, jobsDatabase } from './support.js'

const fixture = compiledFixture(new URL('./fixtures/crashing-worker.ts', import.meta.url))

t.test(
  'a worker killed with SIGKILL mid-job: another worker runs the job again within the lease',
  async (t) => {
    const db = await jobsDatabase(t)
    const pool = db.pool()
    const config = jobsConfig({ leaseMs: 1500, heartbeatMs: 375, pollMs: 200, concurrency: 1 })
    const { job } = await enqueueJob(pool, { kind: 'crash' })

    // A real process, so the death is real: no finally block, no release, no last heartbeat.
    const { child, output, exited } = runNode([fixture], {
      env: { ...process.env, JOBS_TEST_URL: db.url, JOBS_TEST_CONFIG: JSON.stringify(config) },
    })
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    await Promise.race([
      waitFor(() => output().includes(`running ${job.id} 1`), 60_000, 'the job to start', 20),
      exited.then(() => {
        throw new Error(`the worker process exited early:\n${output()}`)
      }),
    ])

    const rerun = deferred<{ at: number; attempt: number }>()
    await db.worker({
      handlers: {
        crash: async (_job, ctx) => {
          rerun.resolve({ at: Date.now(), attempt: ctx.attempt })
        },
      },
      config,
    })
    // Twice the lease: the child's heartbeats keep the job its own the whole time.
    const early = await Promise.race([rerun.promise, new Promise((r) => setTimeout(r, 3000, 'none'))])
    t.equal(early, 'none', "a live worker's heartbeats keep its job beyond leaseMs")
    t.match(await jobState(pool, job.id), { state: 'running', attempts: 1 })

    child.kill('SIGKILL')
    const killedAt = Date.now()
    await exited
    // The dead worker's last lease, as its last heartbeat left it.
    const { rows } = await pool.query<{ until: Date }>(
      'SELECT locked_until AS until FROM jobs WHERE id = $1',
      [job.id],
    )
    const leaseEnd = rows[0]!.until.getTime()
    const { at, attempt } = await rerun.promise
    const recovery = at - killedAt
    t.comment(`rerun ${recovery} ms after SIGKILL (leaseMs 1500, heartbeatMs 375, pollMs 200)`)
    t.ok(at >= leaseEnd, 'not before the dead worker’s last lease ran out')
    // Lease-bound rather than hours; the margin is for a loaded machine.
    t.ok(recovery <= 1500 + 200 + 10_000, `within the lease plus a margin (${recovery} ms)`)
    t.equal(attempt, 2, 'the rerun is attempt 2')
    await waitFor(
      async () => (await jobState(pool, job.id)).state === 'succeeded',
      10_000,
      'the rerun to finish',
    )
    t.match(await jobState(pool, job.id), { state: 'succeeded', attempts: 2 })
  },
)
