import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import t from 'tap'
import { appendAuditEvent } from '../../src/audit/index.js'
import { withTransaction } from '../../src/db/transaction.js'
import { LeaseLostError, NonRetryableJobError } from '../../src/jobs/handler.js'
import { enqueueJob, getJob } from '../../src/jobs/sql.js'
import { deferred, waitFor, within } from '../helpers/wait.js'
import { jobState, jobsConfig, jobsDatabase } from './support.js'

/**
 * A poll interval no test waits out: a job picked up well before it was woken by NOTIFY. The bound
 * on such a pickup is generous, for a loaded machine, and still far below the poll.
 */
const NEVER_POLL_MS = 600_000
const NOTIFIED_WITHIN_MS = 30_000

/** The session the worker LISTENs on (its last statement stays `LISTEN regent_jobs` while idle). */
async function listenerPid(admin: pg.Pool): Promise<number | undefined> {
  const { rows } = await admin.query(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND query = 'LISTEN regent_jobs' AND pid <> pg_backend_pid()`,
  )
  return rows.length === 1 ? (rows[0].pid as number) : undefined
}

t.test(
  'a rolled back enqueue does not exist; a committed one wakes an idle worker through NOTIFY',
  async (t) => {
    const db = await jobsDatabase(t)
    const pool = db.pool()
    let runs = 0
    const picked = deferred<number>()
    await db.worker({
      handlers: {
        notify: async () => {
          runs++
          picked.resolve(Date.now())
        },
      },
      // Only the notification can explain a pickup before the next poll.
      config: jobsConfig({ pollMs: NEVER_POLL_MS }),
    })

    const client = await pool.connect()
    let rolledBackId: string
    try {
      await client.query('BEGIN')
      rolledBackId = (await enqueueJob(client, { kind: 'notify' })).job.id
      await client.query('ROLLBACK')
    } finally {
      client.release()
    }
    await sleep(300)
    t.equal(await getJob(pool, rolledBackId), undefined, 'the rolled back job does not exist')
    t.equal(runs, 0, 'and nothing ran')

    const id = await withTransaction(pool, async (tx) => (await enqueueJob(tx, { kind: 'notify' })).job.id)
    const committedAt = Date.now()
    const pickup = (await picked.promise) - committedAt
    t.ok(pickup < NOTIFIED_WITHIN_MS, `picked up ${pickup} ms after commit (pollMs ${NEVER_POLL_MS})`)
    await waitFor(async () => (await jobState(pool, id)).state === 'succeeded', 10_000, 'the job to succeed')
    t.equal(runs, 1)
  },
)

t.test(
  'the LISTEN connection is re-opened after it drops, and notifications wake the worker again',
  async (t) => {
    const db = await jobsDatabase(t)
    const pool = db.pool()
    const admin = db.pool(1)
    const picked: number[] = []
    await db.worker({
      handlers: {
        notify: async () => {
          picked.push(Date.now())
        },
      },
      config: jobsConfig({ pollMs: NEVER_POLL_MS }),
    })
    const first = await waitFor(() => listenerPid(admin), 10_000, 'the LISTEN session')
    await admin.query('SELECT pg_terminate_backend($1)', [first])
    const second = await waitFor(
      async () => {
        const pid = await listenerPid(admin)
        return pid !== first && pid
      },
      10_000,
      'a new LISTEN session',
    )
    t.not(second, first, 'a new session listens')

    const { job } = await enqueueJob(pool, { kind: 'notify' })
    const enqueuedAt = Date.now()
    await waitFor(
      async () => (await jobState(pool, job.id)).state === 'succeeded',
      NOTIFIED_WITHIN_MS,
      'the job to run',
    )
    const pickup = picked[0]! - enqueuedAt
    t.ok(pickup < NOTIFIED_WITHIN_MS, `woken by a notification, not by the poll (${pickup} ms)`)
  },
)

t.test('two workers on separate pools racing over 200 jobs run each exactly once', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const executions = new Map<string, number>()
  const byWorker = { a: 0, b: 0 }
  const handler = (name: 'a' | 'b') => async (job: { id: string }) => {
    executions.set(job.id, (executions.get(job.id) ?? 0) + 1)
    byWorker[name]++
    await sleep(Math.random() * 3)
  }
  const config = jobsConfig({ pollMs: 200, concurrency: 8 })
  await db.worker({ handlers: { race: handler('a') }, config, pool: db.pool(5) })
  await db.worker({ handlers: { race: handler('b') }, config, pool: db.pool(5) })

  const ids = await withTransaction(pool, async (tx) => {
    const ids: string[] = []
    for (let i = 0; i < 200; i++) ids.push((await enqueueJob(tx, { kind: 'race', payload: { i } })).job.id)
    return ids
  })
  await waitFor(
    async () => {
      const { rows } = await pool.query("SELECT count(*)::int AS n FROM jobs WHERE state = 'succeeded'")
      return rows[0].n === 200
    },
    20_000,
    '200 jobs to succeed',
  )
  t.equal(executions.size, 200, 'every job ran')
  t.ok(
    ids.every((id) => executions.get(id) === 1),
    'each exactly once',
  )
  t.comment(`worker a ran ${byWorker.a}, worker b ran ${byWorker.b}`)
  t.ok(byWorker.a > 0 && byWorker.b > 0, 'both workers took part')
  const { rows } = await pool.query('SELECT DISTINCT attempts FROM jobs')
  t.same(rows, [{ attempts: 1 }], 'no job needed a second attempt')
})

t.test('the per-registry cap holds across two workers', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const running = new Map<string, number>()
  const peak = new Map<string, number>()
  const handler = async (job: { registry: string | null }) => {
    const registry = job.registry ?? '-'
    const now = (running.get(registry) ?? 0) + 1
    running.set(registry, now)
    peak.set(registry, Math.max(peak.get(registry) ?? 0, now))
    await sleep(80)
    running.set(registry, (running.get(registry) ?? 1) - 1)
  }
  // 8 slots in all but 2 for the registry: the cap, not the slots, is what limits it.
  const config = jobsConfig({ pollMs: 100, concurrency: 4, registryConcurrency: 2 })
  await db.worker({ handlers: { capped: handler }, config, pool: db.pool(5) })
  await db.worker({ handlers: { capped: handler }, config, pool: db.pool(5) })

  await withTransaction(pool, async (tx) => {
    for (let i = 0; i < 20; i++) await enqueueJob(tx, { kind: 'capped', registry: 'r1' })
    for (let i = 0; i < 4; i++) await enqueueJob(tx, { kind: 'capped', registry: 'r2' })
  })
  await waitFor(
    async () => {
      const { rows } = await pool.query("SELECT count(*)::int AS n FROM jobs WHERE state = 'succeeded'")
      return rows[0].n === 24
    },
    20_000,
    '24 jobs to succeed',
  )
  t.comment(`peak concurrency: r1 ${peak.get('r1')}, r2 ${peak.get('r2')}`)
  t.equal(peak.get('r1'), 2, 'registry r1 ran at most 2 at once, and reached 2')
  t.equal(peak.get('r2'), 2, 'registry r2 had its own 2 slots')
})

t.test(
  'an always failing job: maxAttempts attempts with growing delays, then failed; onFailed is atomic',
  async (t) => {
    const db = await jobsDatabase(t)
    const pool = db.pool()
    const observer = db.pool(2)
    const attempts: { attempt: number; at: number }[] = []
    let onFailedCalls = 0
    let stateSeenOutside: string | undefined
    await db.worker({
      handlers: {
        flaky: async (_job, ctx) => {
          attempts.push({ attempt: ctx.attempt, at: Date.now() })
          throw new Error('registry said 500')
        },
      },
      // random pinned to 1: each delay is exactly its ceiling (100, 200, 400 ms).
      config: jobsConfig({ pollMs: 5000, backoffBaseMs: 100, backoffMaxMs: 10_000 }),
      random: () => 1,
      onFailed: async (client, job) => {
        onFailedCalls++
        await appendAuditEvent(client, {
          action: 'job.failed',
          outcome: 'failed',
          actorSubject: 'regent',
          onBehalfOf: null,
          actorTeams: [],
          channel: 'system',
          sourceIp: null,
          userAgent: null,
          requestId: null,
          details: { jobId: job.id, attempts: job.attempts },
        })
        if (onFailedCalls === 1) throw new Error('audit hiccup')
        // What other sessions see while this second transaction is open: the first one's rollback.
        stateSeenOutside = (await jobState(observer, job.id)).state
      },
    })
    // Each retry's delay exactly as the failing UPDATE scheduled it: run_at and updated_at come
    // from the same now(), so their difference is the delay, whatever the machine's load.
    await pool.query(`
      CREATE TABLE retry_delays (n serial, ms integer);
      CREATE FUNCTION record_retry_delay() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO retry_delays (ms)
            VALUES (round(extract(epoch FROM NEW.run_at - NEW.updated_at) * 1000));
          RETURN NEW;
        END $$;
      CREATE TRIGGER record_retry_delay AFTER UPDATE ON jobs FOR EACH ROW
        WHEN (OLD.state = 'running' AND NEW.state = 'queued') EXECUTE FUNCTION record_retry_delay();
    `)
    const { job } = await enqueueJob(pool, { kind: 'flaky', maxAttempts: 4 })
    await waitFor(async () => (await jobState(pool, job.id)).state === 'failed', 20_000, 'the job to fail')
    await sleep(300) // a fifth attempt, if one were coming, would start now

    t.same(
      attempts.map((a) => a.attempt),
      [1, 2, 3, 4],
      'exactly maxAttempts attempts',
    )
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at)
    t.comment(`delays between attempts: ${gaps.join(', ')} ms`)
    t.ok(gaps[0]! >= 100 && gaps[1]! >= 200 && gaps[2]! >= 400, 'each attempt waited at least its backoff')
    const delays = await pool.query<{ ms: number }>('SELECT ms FROM retry_delays ORDER BY n')
    t.same(
      delays.rows.map((r) => r.ms),
      [100, 200, 400],
      'the delays grow: each retry was scheduled its doubling ceiling',
    )
    t.match(await jobState(pool, job.id), { state: 'failed', attempts: 4, locked_by: null })
    t.match((await jobState(pool, job.id)).last_error, /registry said 500/)

    t.equal(onFailedCalls, 2, 'onFailed threw once and was run again')
    t.equal(stateSeenOutside, 'running', 'when onFailed threw, the job was not marked failed')
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'job.failed' AND details->>'jobId' = $1",
      [job.id],
    )
    t.equal(rows[0].n, 1, 'one audit event: the one of the failed attempt to record it rolled back with it')
  },
)

t.test('a non-retryable error fails the job at once', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const calls = new Map<string, number>()
  const failedJobs: string[] = []
  await db.worker({
    handlers: {
      denied: async (job) => {
        calls.set(job.id, (calls.get(job.id) ?? 0) + 1)
        throw (job.payload as { duck: boolean }).duck
          ? Object.assign(new Error('403 DENIED'), { retryable: false })
          : new NonRetryableJobError('delete disabled')
      },
    },
    config: jobsConfig({ pollMs: 100, backoffBaseMs: 10 }),
    onFailed: async (_client, job) => {
      failedJobs.push(job.id)
    },
  })
  const a = await enqueueJob(pool, { kind: 'denied', payload: { duck: false }, maxAttempts: 5 })
  const b = await enqueueJob(pool, { kind: 'denied', payload: { duck: true }, maxAttempts: 5 })
  for (const { job } of [a, b]) {
    await waitFor(async () => (await jobState(pool, job.id)).state === 'failed', 5000, 'the job to fail')
  }
  await sleep(300)
  t.match(await jobState(pool, a.job.id), { attempts: 1, last_error: 'delete disabled' })
  t.match(await jobState(pool, b.job.id), { attempts: 1, last_error: '403 DENIED' })
  t.same([calls.get(a.job.id), calls.get(b.job.id)], [1, 1], 'each handler ran once')
  t.same(failedJobs.sort(), [a.job.id, b.job.id].sort(), 'onFailed ran for each')
})

t.test('while a handler runs, no session of the database is idle in a transaction', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const sampler = db.pool(1)
  const started = deferred()
  const finished = deferred()
  await db.worker({
    handlers: {
      slow: async (_job, ctx) => {
        started.resolve()
        for (let i = 0; i < 4; i++) {
          await sleep(1000)
          await ctx.progress({ step: i + 1, of: 4 })
        }
        finished.resolve()
        return { ok: true }
      },
    },
    // Heartbeats every 150 ms: plenty of writes while the handler sleeps.
    config: jobsConfig({ pollMs: 100, leaseMs: 5000, heartbeatMs: 150 }),
  })
  const { job } = await enqueueJob(pool, { kind: 'slow' })
  await started.promise

  const samples: { idle_in_tx: number; long_tx: number }[] = []
  let done = false
  finished.promise.then(() => {
    done = true
  })
  while (!done) {
    const { rows } = await sampler.query(
      // Between the statements of a claim (BEGIN, lock, claim, COMMIT) a session is idle in
      // transaction for well under a millisecond; a transaction held across the 4 s handler would
      // stay open for seconds. The thresholds sit far above the first (a loaded machine stalls)
      // and below the second.
      `SELECT count(*) FILTER (WHERE state LIKE 'idle in transaction%'
                                 AND state_change < now() - interval '1 second')::int AS idle_in_tx,
              count(*) FILTER (WHERE xact_start < now() - interval '2 seconds')::int AS long_tx
       FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    )
    samples.push(rows[0])
    await sleep(25)
  }
  t.ok(samples.length > 30, `${samples.length} samples over the 4 s handler`)
  t.equal(
    samples.filter((s) => s.idle_in_tx > 0).length,
    0,
    'never a session idle in transaction for a second',
  )
  t.equal(samples.filter((s) => s.long_tx > 0).length, 0, 'never a transaction open for two seconds')
  await waitFor(
    async () => (await jobState(pool, job.id)).state === 'succeeded',
    10_000,
    'the job to succeed',
  )
  t.match(await getJob(pool, job.id), { progress: { step: 4, of: 4 }, result: { ok: true } })
})

t.test('a worker whose lease was taken over is aborted and writes nothing', async (t) => {
  const db = await jobsDatabase(t)
  const pool = db.pool()
  const started = deferred()
  const aborted = deferred<unknown>()
  await db.worker({
    workerId: 'stalled',
    handlers: {
      slow: async (_job, ctx) => {
        started.resolve()
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
        aborted.resolve(ctx.signal.reason)
        return { by: 'stalled' } // too late: must not be stored
      },
    },
    config: jobsConfig({ pollMs: 100, leaseMs: 2000, heartbeatMs: 100 }),
  })
  const { job } = await enqueueJob(pool, { kind: 'slow' })
  await started.promise
  // What a takeover after an expired lease does to the row, done directly so no heartbeat can
  // race it: another worker now holds the job.
  await pool.query(
    `UPDATE jobs SET locked_by = 'thief', attempts = attempts + 1,
       locked_until = now() + interval '1 minute' WHERE id = $1`,
    [job.id],
  )
  const reason = (await within(aborted.promise, 15_000)) ?? 'not aborted'
  t.ok(reason instanceof LeaseLostError, 'the handler signal aborts with LeaseLostError')
  await sleep(300)
  t.match(await getJob(pool, job.id), { state: 'running', lockedBy: 'thief', result: null })
})
