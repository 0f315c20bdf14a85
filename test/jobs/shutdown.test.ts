import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { enqueueJob, getJob } from '../../src/jobs/sql.js'
import { WorkerStoppingError } from '../../src/jobs/worker.js'
import { deferred, waitFor } from '../helpers/wait.js'
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

    // The second replica only handles `long`, and polls so rarely that only the release's NOTIFY
    // can explain a quick pickup.
    const rerun = deferred<{ at: number; attempt: number }>()
    await db.worker({
      handlers: {
        long: async (_job, ctx) => {
          rerun.resolve({ at: Date.now(), attempt: ctx.attempt })
        },
      },
      config: jobsConfig({ pollMs: 10_000 }),
    })

    const stopStarted = Date.now()
    const stopped = stopping.stop()
    // The stopping worker has a free slot and handles `other`, but claims nothing any more.
    const other = await enqueueJob(pool, { kind: 'other' })
    await stopped
    const stopMs = Date.now() - stopStarted
    t.comment(`stop() took ${stopMs} ms with shutdownGraceMs 500`)
    t.ok(stopMs >= 450 && stopMs < 2000, 'stop() waited for the grace period, then returned')
    t.ok((await abortReason.promise) instanceof WorkerStoppingError, 'the handler was aborted')
    t.match(
      await jobState(pool, other.job.id),
      { state: 'queued', attempts: 0 },
      'nothing claimed after stop()',
    )

    const { at, attempt } = await rerun.promise
    t.comment(`picked up by the other worker ${at - stopStarted - 500} ms after the grace period`)
    t.ok(at - stopStarted < 1500, 'the other worker picked the released job up at once')
    t.equal(attempt, 1, 'the aborted attempt was given back')
    await waitFor(
      async () => (await jobState(pool, job.id)).state === 'succeeded',
      2000,
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
    config: jobsConfig({ pollMs: 100, shutdownGraceMs: 3000 }),
  })
  const { job } = await enqueueJob(pool, { kind: 'short' })
  await started.promise
  const stopStarted = Date.now()
  await worker.stop()
  const stopMs = Date.now() - stopStarted
  t.comment(`stop() took ${stopMs} ms`)
  t.ok(stopMs < 1500, 'stop() returned as soon as the handler was done, not after the grace period')
  t.equal(aborted, false, 'the handler was never aborted')
  t.match(await getJob(pool, job.id), { state: 'succeeded', attempts: 1, result: { finished: true } })
})
