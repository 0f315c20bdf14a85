import { randomUUID } from 'node:crypto'
import t from 'tap'
import { claimJobs, enqueueJob, updateProgress } from '../../src/jobs/sql.js'
import { authHeaders, build } from '../helper.js'

const viewer = authHeaders({ sub: 'vic', roles: ['viewer'] })
const admin = authHeaders({ sub: 'root', roles: ['admin'] })

t.test('GET /v1/jobs/{id} shows state, attempts, progress and timestamps', async (t) => {
  const app = await build(t)
  const { job } = await enqueueJob(app.db, {
    kind: 'delete',
    registry: 'main',
    payload: { secret: 'not shown' },
    maxAttempts: 3,
  })
  await claimJobs(app.db, {
    workerId: 'w1',
    kinds: ['delete'],
    limit: 1,
    leaseMs: 60_000,
    registryConcurrency: 4,
  })
  await updateProgress(app.db, job.id, 'w1', { done: 2, of: 5 })

  const res = await app.inject({ url: `/v1/jobs/${job.id}`, headers: admin })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, {
    id: job.id,
    kind: 'delete',
    state: 'running',
    registry: 'main',
    attempts: 1,
    maxAttempts: 3,
    progress: { done: 2, of: 5 },
    lastError: null,
    finishedAt: null,
  })
  t.ok(Date.parse(body.createdAt) && Date.parse(body.leaseExpiresAt), 'timestamps are ISO strings')
  t.notOk('payload' in body || 'lockedBy' in body, 'neither the payload nor the worker id is shown')
})

t.test(
  'GET /v1/jobs/{id}: 404 for an unknown job, 400 for a malformed id, 401/403 without a role',
  async (t) => {
    const app = await build(t)
    const unknown = await app.inject({
      url: '/v1/jobs/00000000-0000-4000-8000-000000000000',
      headers: viewer,
    })
    t.equal(unknown.statusCode, 404)
    t.equal(unknown.json().error.code, 'REGENT_JOB_NOT_FOUND')

    const malformed = await app.inject({ url: '/v1/jobs/42', headers: viewer })
    t.equal(malformed.statusCode, 400)
    t.equal(malformed.json().error.code, 'REGENT_VALIDATION')

    const anonymous = await app.inject({ url: '/v1/jobs/00000000-0000-4000-8000-000000000000' })
    t.equal(anonymous.statusCode, 401)
    const noRole = await app.inject({
      url: '/v1/jobs/00000000-0000-4000-8000-000000000000',
      headers: authHeaders({ sub: 'nobody' }),
    })
    t.equal(noRole.statusCode, 403)
    t.equal(noRole.json().error.code, 'REGENT_FORBIDDEN')
  },
)

t.test('a job is visible to the teams of what it acts on, and to no one else', async (t) => {
  const app = await build(t)
  const plan = { items: [], repositories: [], approvals: { count: 0, from: [], adminCount: 0, reasons: [] } }
  const { rows } = await app.db.query<{ id: string }>(
    `INSERT INTO deletion_requests (registry, verb, targets, reason, requester_subject, requester_person,
       requester_channel, state, plan, plan_hash, approval_requirement, owning_teams)
     VALUES ('local', 'untag', '[]', 'r', 'pat', 'pat', 'api', 'queued', $1::jsonb, $2, $3::jsonb, '{payments}')
     RETURNING id`,
    [JSON.stringify(plan), 'a'.repeat(64), JSON.stringify(plan.approvals)],
  )
  const deletionJob = (
    await enqueueJob(app.db, {
      kind: 'deletion.execute',
      registry: 'local',
      payload: { deletionId: rows[0]!.id },
    })
  ).job
  const gcJob = (
    await enqueueJob(app.db, { kind: 'gc.run', registry: 'local', payload: { runId: randomUUID() } })
  ).job
  const deliveryJob = (await enqueueJob(app.db, { kind: 'notification.deliver', payload: {} })).job

  const payments = authHeaders({ sub: 'pia', groups: ['payments'], roles: ['viewer'] })
  const web = authHeaders({ sub: 'wes', groups: ['web'], roles: ['viewer'] })
  const status = async (id: string, headers: Record<string, string>) =>
    (await app.inject({ url: `/v1/jobs/${id}`, headers })).statusCode

  t.equal(await status(deletionJob.id, payments), 200, "the owning team's viewer follows the deletion's job")
  t.equal(await status(deletionJob.id, web), 404, "another team's viewer does not learn it exists")
  t.equal(await status(gcJob.id, web), 200, 'GC runs, and their jobs, are for every role')
  t.equal(await status(deliveryJob.id, payments), 404, 'a notification job is for admins')
  t.equal(await status(deliveryJob.id, admin), 200)
})
