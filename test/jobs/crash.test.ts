import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { enqueueJob } from '../../src/jobs/sql.js'
import { deferred, jobState, jobsConfig, jobsDatabase } from './support.js'

const fixture = fileURLToPath(new URL('./fixtures/crashing-worker.ts', import.meta.url))

t.test(
  'a worker killed with SIGKILL mid-job: another worker runs the job again within the lease',
  async (t) => {
    const db = await jobsDatabase(t)
    const pool = db.pool()
    const config = jobsConfig({ leaseMs: 1500, heartbeatMs: 375, pollMs: 200, concurrency: 1 })
    const { job } = await enqueueJob(pool, { kind: 'crash' })

    // A real process, so the death is real: no finally block, no release, no last heartbeat.
    const child = spawn(process.execPath, ['--import', '@tapjs/typescript/import', fixture], {
      env: { ...process.env, JOBS_TEST_URL: db.url, JOBS_TEST_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    let output = ''
    const running = deferred()
    child.stdout.on('data', (chunk) => {
      output += chunk
      if (output.includes(`running ${job.id} 1`)) running.resolve()
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    await Promise.race([
      running.promise,
      exited.then(() => {
        throw new Error(`the worker process exited early:\n${output}`)
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
    const { at, attempt } = await rerun.promise
    const recovery = at - killedAt
    t.comment(`rerun ${recovery} ms after SIGKILL (leaseMs 1500, heartbeatMs 375, pollMs 200)`)
    t.ok(recovery >= 1000, 'not before the dead worker’s last lease ran out')
    t.ok(recovery <= 1500 + 200 + 500, 'within leaseMs + pollMs + a margin')
    t.equal(attempt, 2, 'the rerun is attempt 2')
    await new Promise((r) => setTimeout(r, 200))
    t.match(await jobState(pool, job.id), { state: 'succeeded', attempts: 2 })
  },
)
