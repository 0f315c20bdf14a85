import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { jobRoutes } from '../../src/jobs/routes.js'
import { claimJobs, enqueueJob, updateProgress } from '../../src/jobs/sql.js'
import { authHeaders, build } from '../helper.js'

const withJobRoutes = {
  // Until app.ts registers the routes itself.
  beforeReady: async (app: FastifyInstance) => {
    if (!app.hasRoute({ method: 'GET', url: '/v1/jobs/:id' })) await app.register(jobRoutes)
  },
}
const viewer = authHeaders({ sub: 'vic', roles: ['viewer'] })

t.test('GET /v1/jobs/{id} shows state, attempts, progress and timestamps to any role', async (t) => {
  const app = await build(t, withJobRoutes)
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

  const res = await app.inject({ url: `/v1/jobs/${job.id}`, headers: viewer })
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
    const app = await build(t, withJobRoutes)
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
