import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WorkerStoppingError } from '../../src/jobs/handler.js'
import { enqueueJob, getJob } from '../../src/jobs/sql.js'
import { deferred, waitFor, within } from '../helpers/wait.js'
import { jobState, jobsConfig, jobsDatabase } from './support.js'

t.test(
  'stop() during a long handler: no new claims, grace, then the job is released to another worker',
  async (t) => {
    const db = await jobsDatabase(t)
    const pool = db.pool()
    const started = deferred()
    const abortReason = deferred<unknown>()
    const stopping = await db.worker({
      handlers: {
        long: async (_job, ctx) => {
          started.resolve()
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
          abortReason.resolve(ctx.signal.reason)
        },
        other: async () => {},
      },
      config: jobsConfig({ pollMs: 100, concurrency: 2, shutdownGraceMs: 500 }),
    })
    const { job } = await enqueueJob(pool, { kind: 'long' })
    await started.promise

    // The second replica only handles `long`, and polls so rarely (every 10 minutes) that only the
    // release's NOTIFY can explain a pickup before the test times out.
    const rerun = deferred<{ at: number; attempt: number }>()
    await db.worker({
      handlers: {
        long: async (_job, ctx) => {
          rerun.resolve({ at: Date.now(), attempt: ctx.attempt })
        },
      },
      config: jobsConfig({ pollMs: 600_000 }),
    })

    const stopStarted = Date.now()
    const stopped = stopping.stop()
    // The stopping worker has a free slot and handles `other`, but claims nothing any more.
    const other = await enqueueJob(pool, { kind: 'other' })
    await stopped
    const stopMs = Date.now() - stopStarted
    // The handler never returns by itself: stop() returning at all shows it did not wait for it.
    // The upper bound is a sanity check with room for a loaded machine.
    t.ok(stopMs >= 450 && stopMs < 10_000, `stop() waited for the grace period, then returned (${stopMs} ms)`)
    t.ok((await abortReason.promise) instanceof WorkerStoppingError, 'the handler was aborted')
    t.match(
      await jobState(pool, other.job.id),
      { state: 'queued', attempts: 0 },
      'nothing claimed after stop()',
    )

    const picked = await within(rerun.promise, 30_000)
    if (!picked) throw new Error('the released job was not picked up before the next poll')
    const { at, attempt } = picked
    t.pass('the other worker picked the released job up without waiting for its poll')
    t.ok(at >= stopStarted + 450, 'not before the grace period ended')
    t.comment(`picked up by the other worker ${at - stopStarted - 500} ms after the grace period`)
    t.equal(attempt, 1, 'the aborted attempt was given back')
    await waitFor(
      async () => (await jobState(pool, job.id)).state === 'succeeded',
      10_000,
      'the job to succeed',
    )
    t.match(await jobState(pool, job.id), { attempts: 1 })
  },
)

t.test('stop() lets a handler that finishes within the grace period complete normally', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const started = deferred()
  let aborted = false
  const worker = await db.worker({
    handlers: {
      short: async (_job, ctx) => {
        started.resolve()
        await sleep(300)
        aborted = ctx.signal.aborted
        return { finished: true }
      },
    },
    // A grace period far longer than the handler: returning well within it shows stop() did not
    // wait it out.
    config: jobsConfig({ pollMs: 100, shutdownGraceMs: 60_000 }),
  })
  const { job } = await enqueueJob(pool, { kind: 'short' })
  await started.promise
  const stopStarted = Date.now()
  await worker.stop()
  const stopMs = Date.now() - stopStarted
  t.ok(
    stopMs < 30_000,
    `stop() returned once the handler was done, not after the grace period (${stopMs} ms)`,
  )
  t.equal(aborted, false, 'the handler was never aborted')
  t.match(await getJob(pool, job.id), { state: 'succeeded', attempts: 1, result: { finished: true } })
})
