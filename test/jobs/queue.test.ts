import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { withTransaction } from '../../src/db/transaction.js'
import {
  cancelJob,
  claimJobs,
  completeJob,
  enqueueJob,
  failExpiredJobs,
  failJob,
  getJob,
  heartbeat,
  listJobs,
  releaseJobs,
  updateProgress,
} from '../../src/jobs/sql.js'
import { jobsDatabase } from './support.js'

const claim = { kinds: ['test'], limit: 10, leaseMs: 60_000, registryConcurrency: 4 }

t.test('the same unique key enqueued concurrently gives one job, and every caller gets its id', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool(20)
  const results = await Promise.all(
    Array.from({ length: 20 }, () =>
      enqueueJob(pool, { kind: 'test', payload: { n: 1 }, uniqueKey: 'deletion:42' }),
    ),
  )
  const ids = new Set(results.map((r) => r.job.id))
  t.equal(ids.size, 1, 'all callers see the same job')
  t.equal(results.filter((r) => r.created).length, 1, 'exactly one caller created it')
  const { rows } = await pool.query("SELECT count(*)::int AS n FROM jobs WHERE unique_key = 'deletion:42'")
  t.equal(rows[0].n, 1)
  t.same(results[0]!.job.payload, { n: 1 })

  const other = await enqueueJob(pool, { kind: 'test' })
  const another = await enqueueJob(pool, { kind: 'test' })
  t.not(other.job.id, another.job.id, 'jobs without a key are never merged')
})

t.test('a taken-over lease: the old owner can neither complete, fail, release nor renew it', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const { job } = await enqueueJob(pool, { kind: 'test' })
  const [claimedByA] = await claimJobs(pool, { ...claim, workerId: 'A', leaseMs: 200 })
  t.equal(claimedByA?.id, job.id)
  t.equal(claimedByA?.attempts, 1)
  t.same(await claimJobs(pool, { ...claim, workerId: 'B' }), [], 'a live lease is not claimed')

  await sleep(300)
  const [claimedByB] = await claimJobs(pool, { ...claim, workerId: 'B' })
  t.equal(claimedByB?.id, job.id, 'an expired lease is claimed by another worker')
  t.equal(claimedByB?.attempts, 2, 'the takeover is a new attempt')

  t.equal(await completeJob(pool, job.id, 'A', { by: 'A' }), undefined, "A's completion affects 0 rows")
  t.equal(await failJob(pool, job.id, 'A', { error: 'x', retryable: true, backoffMs: 0 }), undefined)
  t.equal(await updateProgress(pool, job.id, 'A', { step: 1 }), false)
  t.same(await heartbeat(pool, 'A', [job.id], 60_000), [], 'A learns from its heartbeat that it lost the job')
  t.same(await releaseJobs(pool, 'A', [job.id]), [])
  t.match(await getJob(pool, job.id), { state: 'running', lockedBy: 'B', attempts: 2, result: null })

  t.same(await heartbeat(pool, 'B', [job.id], 60_000), [job.id])
  const done = await completeJob(pool, job.id, 'B', { by: 'B' })
  t.match(done, { state: 'succeeded', lockedBy: null, lockedUntil: null, result: { by: 'B' } })
  t.ok(done?.finishedAt)
})

t.test('a heartbeat moves the lease forward', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  await enqueueJob(pool, { kind: 'test' })
  const [job] = await claimJobs(pool, { ...claim, workerId: 'A', leaseMs: 1000 })
  await heartbeat(pool, 'A', [job!.id], 30_000)
  const renewed = await getJob(pool, job!.id)
  const remaining = renewed!.lockedUntil!.getTime() - Date.now()
  t.ok(remaining > 25_000 && remaining <= 30_000, `lease now ends in ${remaining} ms`)
})

t.test('failJob retries with a future run_at until the last attempt, then fails for good', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const { job } = await enqueueJob(pool, { kind: 'test', maxAttempts: 2 })
  await claimJobs(pool, { ...claim, workerId: 'A' })
  const first = await failJob(pool, job.id, 'A', { error: 'boom 1', retryable: true, backoffMs: 500 })
  t.equal(first?.outcome, 'retry')
  t.match(first?.job, { state: 'queued', lastError: 'boom 1', lockedBy: null, finishedAt: null })
  t.ok(first!.job.runAt.getTime() - Date.now() > 300, 'run_at is in the future')
  t.same(await claimJobs(pool, { ...claim, workerId: 'A' }), [], 'not due yet')
  await sleep(550)
  const [again] = await claimJobs(pool, { ...claim, workerId: 'A' })
  t.equal(again?.attempts, 2)
  const last = await failJob(pool, job.id, 'A', { error: 'boom 2', retryable: true, backoffMs: 0 })
  t.equal(last?.outcome, 'failed')
  t.match(last?.job, { state: 'failed', lastError: 'boom 2', attempts: 2 })
  t.ok(last?.job.finishedAt)
  t.same(await claimJobs(pool, { ...claim, workerId: 'A' }), [], 'a failed job is never claimed')
})

t.test('a non-retryable failure fails the job with attempts left', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const { job } = await enqueueJob(pool, { kind: 'test', maxAttempts: 5 })
  await claimJobs(pool, { ...claim, workerId: 'A' })
  const failed = await failJob(pool, job.id, 'A', { error: 'denied', retryable: false, backoffMs: 0 })
  t.match(failed, { outcome: 'failed', job: { state: 'failed', attempts: 1, lastError: 'denied' } })
})

t.test('releasing gives the attempt back and makes the job due at once', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const { job } = await enqueueJob(pool, { kind: 'test' })
  await claimJobs(pool, { ...claim, workerId: 'A' })
  t.same(await releaseJobs(pool, 'A', [job.id]), [job.id])
  t.match(await getJob(pool, job.id), { state: 'queued', attempts: 0, lockedBy: null })
  const [again] = await claimJobs(pool, { ...claim, workerId: 'B' })
  t.equal(again?.attempts, 1, 'the next claim is attempt 1 again')
})

t.test('a running job whose last attempt was abandoned is failed, not claimed a further time', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const { job } = await enqueueJob(pool, { kind: 'test', maxAttempts: 1 })
  await claimJobs(pool, { ...claim, workerId: 'dead', leaseMs: 100 })
  await sleep(150)
  t.same(await claimJobs(pool, { ...claim, workerId: 'B' }), [], 'no attempt beyond max_attempts')
  const failed = await withTransaction(pool, (client) =>
    failExpiredJobs(client, { kinds: ['test'], limit: 10 }),
  )
  t.equal(failed.length, 1)
  t.match(failed[0], { id: job.id, state: 'failed', lockedBy: null, attempts: 1 })
  t.match(failed[0]?.lastError, /lease expired during the last attempt \(1 of 1\): worker dead/)
})

t.test('claims never exceed the registry cap, even with many claimers racing', async (t) => {
  const db = await jobsDatabase(t)
  const pools = Array.from({ length: 4 }, () => db.pool(4))
  // Open every connection first, so the claimers below really start together.
  await Promise.all(pools.flatMap((p) => Array.from({ length: 4 }, () => p.query('SELECT pg_sleep(0.05)'))))
  const race = (limit: number, registryConcurrency: number) =>
    Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        claimJobs(pools[i % pools.length]!, { ...claim, workerId: `w${i}`, limit, registryConcurrency }),
      ),
    ).then((claims) => claims.flat())

  // Many rounds on fresh registries: one lucky interleaving is enough to break a cap that is not
  // serialised, so a single round would prove little.
  const over: string[] = []
  for (let round = 0; round < 10; round++) {
    await withTransaction(pools[0]!, async (tx) => {
      for (let i = 0; i < 20; i++) await enqueueJob(tx, { kind: 'test', registry: `busy-${round}` })
    })
    const claimed = await race(2, 3)
    const count = claimed.filter((j) => j.registry === `busy-${round}`).length
    if (count !== 3) over.push(`round ${round}: ${count}`)
  }
  t.same(over, [], 'every round claimed exactly the cap of 3')

  for (let i = 0; i < 5; i++) await enqueueJob(pools[0]!, { kind: 'test', registry: 'quiet' })
  for (let i = 0; i < 5; i++) await enqueueJob(pools[0]!, { kind: 'test' })
  const claimed = await race(10, 3)
  t.equal(new Set(claimed.map((j) => j.id)).size, claimed.length, 'no job claimed twice')
  t.equal(claimed.filter((j) => j.registry === 'quiet').length, 3, 'another registry has a cap of its own')
  t.equal(claimed.filter((j) => j.registry === null).length, 5, 'jobs without a registry are not capped')
  t.equal(
    claimed.filter((j) => j.registry?.startsWith('busy-')).length,
    0,
    'full registries got nothing more',
  )

  const [done] = await listJobs(pools[0]!, { registry: 'busy-0', state: 'running', limit: 1 })
  await completeJob(pools[0]!, done!.id, done!.lockedBy!)
  const next = await claimJobs(pools[1]!, { ...claim, workerId: 'late', limit: 10, registryConcurrency: 3 })
  t.same(
    next.map((j) => j.registry),
    ['busy-0'],
    'a finished job frees exactly one slot',
  )
})

t.test('only a queued job can be cancelled; listJobs filters and orders newest first', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const a = await enqueueJob(pool, { kind: 'test', registry: 'r1' })
  const b = await enqueueJob(pool, { kind: 'other', registry: 'r2' })
  const [running] = await claimJobs(pool, { ...claim, kinds: ['other'], workerId: 'A' })
  t.equal(running?.id, b.job.id)

  t.equal(await cancelJob(pool, b.job.id), undefined, 'a running job is not cancelled')
  t.match(await cancelJob(pool, a.job.id), { state: 'cancelled' })
  t.equal(await cancelJob(pool, a.job.id), undefined, 'nor a cancelled one again')
  t.equal(await cancelJob(pool, 'not-a-uuid'), undefined)
  t.equal(await getJob(pool, 'not-a-uuid'), undefined)

  t.same(
    (await listJobs(pool)).map((j) => j.id),
    [b.job.id, a.job.id],
  )
  t.same(
    (await listJobs(pool, { state: 'cancelled' })).map((j) => j.id),
    [a.job.id],
  )
  t.same(
    (await listJobs(pool, { kind: 'other', registry: 'r2' })).map((j) => j.id),
    [b.job.id],
  )
  t.same(await listJobs(pool, { registry: 'nope' }), [])
  t.equal((await listJobs(pool, { limit: 1 })).length, 1)
})
