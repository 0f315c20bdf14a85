import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { HOUSEKEEPING_PURGE } from '../../src/housekeeping/index.js'
import { getJob } from '../../src/jobs/index.js'
import { build } from '../helper.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { waitFor } from '../helpers/wait.js'
import { emit } from '../notifications/support.js'

/**
 * The purge job keeps the operational tables bounded: 1,000 jobs (notification deliveries to a
 * real HTTP receiver) run while the scheduled purge runs between rounds, and neither the jobs
 * table nor the deliveries table ever holds much more than what is kept. The audit log stays whole.
 */

const ROUNDS = 10
const PER_ROUND = 100
const KEEP = 50
const CACHE_BUDGET = 64 * 1024

const count = async (app: FastifyInstance, table: string, where = 'true') =>
  Number((await app.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)).rows[0]!.n)

t.test(
  'a purge job scheduled between rounds keeps jobs and deliveries bounded over 1,000 jobs',
  async (t) => {
    const receiver = await startCaptureServer({ status: 200 })
    t.teardown(receiver.stop)
    const app = await build(t, {
      env: { HOOK_SECRET: 'hook-secret-0123456789' },
      config: {
        worker: true,
        jobs: { pollMs: 100, concurrency: 8, heartbeatMs: 500, leaseMs: 5000 },
        notifications: {
          webhooks: [{ name: 'ops', url: `${receiver.url}/hook`, format: 'json', secretEnv: 'HOOK_SECRET' }],
        },
        housekeeping: { everyMinutes: 10, jobsMaxRows: KEEP, deliveriesMaxRows: KEEP, batchSize: 40 },
        browse: { cacheMemoryBytes: CACHE_BUDGET },
      },
    })
    // Content cached long ago beyond the budget, and Slack replay records past their window.
    await app.db.query(
      `INSERT INTO content_cache (registry, repository, digest, kind, media_type, bytes, fetched_at)
     SELECT 'local', 'team/app', 'sha256:' || lpad(i::text, 64, '0'), 'manifest', 'application/json',
            $1::bytea, now() - i * interval '1 minute'
     FROM generate_series(1, 40) AS i`,
      [randomBytes(8 * 1024)],
    )
    await app.db.query(
      `INSERT INTO slack_request_signatures (signature, received_at)
     SELECT 'v0=old' || i, now() - interval '20 minutes' FROM generate_series(1, 30) AS i
     UNION ALL SELECT 'v0=new' || i, now() FROM generate_series(1, 5) AS i`,
    )
    const auditBefore = await count(app, 'audit_events')

    const sizes: { jobs: number; deliveries: number }[] = []
    // Slots ten minutes apart, on the schedule's boundary: each tick queues exactly one purge.
    const base = Math.ceil(Date.now() / 600_000) * 600_000 + 3_600_000
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) {
        await emit(app, {
          type: 'gc.finished',
          subject: `round-${round}-${i}`,
          registry: 'local',
          summary: 'a GC run finished',
          data: { round, i },
        })
      }
      await waitFor(
        async () => (await count(app, 'notification_deliveries', "state = 'pending'")) === 0,
        60_000,
        `round ${round} delivered`,
        100,
      )
      sizes.push({ jobs: await count(app, 'jobs'), deliveries: await count(app, 'notification_deliveries') })
      const fired = await app.housekeepingSchedule.tick(new Date(base + round * 600_000))
      t.equal(fired.length, 1, `round ${round}: the schedule queued one purge job`)
      await waitFor(
        async () => (await getJob(app.db, fired[0]!))?.state === 'succeeded',
        60_000,
        `purge of round ${round}`,
        100,
      )
      sizes.push({ jobs: await count(app, 'jobs'), deliveries: await count(app, 'notification_deliveries') })
    }

    t.equal(receiver.requests.length, ROUNDS * PER_ROUND, '1,000 deliveries were sent, one job each')
    const most = {
      jobs: Math.max(...sizes.map((s) => s.jobs)),
      deliveries: Math.max(...sizes.map((s) => s.deliveries)),
    }
    t.comment(
      `largest tables seen: ${JSON.stringify(most)}; after the last purge: ${JSON.stringify(sizes.at(-1))}`,
    )
    t.ok(most.jobs <= KEEP + PER_ROUND + 2, `the jobs table never held more than ${most.jobs} rows`)
    t.ok(
      most.deliveries <= KEEP + PER_ROUND,
      `the deliveries table never held more than ${most.deliveries} rows`,
    )
    t.ok(sizes.at(-1)!.jobs <= KEEP + 1, 'after a purge, the kept finished jobs (and the purge job itself)')
    t.equal(sizes.at(-1)!.deliveries, KEEP, 'after a purge, the kept deliveries')
    t.equal(await count(app, 'jobs', "state IN ('queued', 'running')"), 0, 'nothing unfinished was touched')

    const cached = (
      await app.db.query<{ bytes: string; oldest: number }>(
        `SELECT coalesce(sum(octet_length(bytes)), 0) AS bytes,
            coalesce(max(extract(epoch FROM now() - fetched_at) / 60), 0)::int AS oldest FROM content_cache`,
      )
    ).rows[0]!
    t.ok(
      Number(cached.bytes) <= CACHE_BUDGET,
      `the content cache holds ${cached.bytes} bytes, within its budget`,
    )
    t.ok(cached.oldest <= 8, 'the most recently fetched rows are the ones kept')
    t.equal(await count(app, 'slack_request_signatures'), 5, 'replay records past their window are gone')
    t.ok((await count(app, 'audit_events')) >= auditBefore, 'the audit log is never purged')

    const metrics = (await app.inject({ url: '/metrics' })).body
    t.match(metrics, /regent_housekeeping_purged_rows_total\{table="jobs"\} \d+/)
    const purges = await app.db.query<{ result: { jobs: number; deliveries: number } }>(
      'SELECT result FROM jobs WHERE kind = $1',
      [HOUSEKEEPING_PURGE],
    )
    t.ok(
      purges.rows.some((r) => r.result.jobs > 0 && r.result.deliveries > 0),
      'a purge job reports what it deleted',
    )
  },
)
