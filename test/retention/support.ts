import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { fastJobs } from '../deletions/support.js'
import { authHeaders, build, createTestDatabase } from '../helper.js'
import { registryConfig, type TestRegistry, withRegistry } from '../helpers/registry.js'

/** Shared by the retention tests: payments deletes its own freely (auto allowed), web needs one approval. */
export const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
    { name: 'web', repositories: [{ pattern: 'web/**' }] },
  ],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
  protections: [{ repositories: '**', tags: ['prod'], level: 'immutable', reason: 'production' }],
}

export const payApprover = authHeaders({ sub: 'pam', groups: ['payments'], roles: ['requester', 'approver'] })
export const payRequester = authHeaders({ sub: 'rick', groups: ['payments'], roles: ['requester'] })
export const webApprover = authHeaders({ sub: 'wendy', groups: ['web'], roles: ['requester', 'approver'] })
export const admin = authHeaders({ sub: 'root', roles: ['admin'] })

export const EVENTS_SECRET = 'retention-test-events-secret'

/** The test registry as `local`, taking registry events with EVENTS_SECRET. */
export function eventsRegistry(registry: TestRegistry) {
  return registryConfig(registry, {
    name: 'local',
    retries: 0,
    events: { secretEnv: 'REGENT_TEST_EVENTS_SECRET' },
  })
}

export async function setup(
  t: Test,
  options: {
    worker?: boolean
    retention?: object
    notifications?: object
    usage?: object
    env?: Record<string, string>
  } = {},
) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const databaseUrl = await createTestDatabase(t)
  const config = {
    registries: [eventsRegistry(registry)],
    governance,
    worker: options.worker ?? false,
    jobs: fastJobs,
    browse: { tagTtlMs: 0 },
    retention: options.retention ?? {},
    ...(options.notifications ? { notifications: options.notifications } : {}),
    ...(options.usage ? { usage: options.usage } : {}),
  }
  const env = { REGENT_TEST_EVENTS_SECRET: EVENTS_SECRET, ...options.env }
  const app = await build(t, { databaseUrl, config, env })
  return { registry, client, app, databaseUrl, config, env }
}

const DAY = 86_400_000

/** Push events as a registry sends them, dated `daysAgo` (tests cannot wait for weeks to pass). */
export async function pushedDaysAgo(
  app: FastifyInstance,
  repository: string,
  manifests: { digest: string; mediaType: string; tag?: string }[],
  daysAgo: number,
  action: 'push' | 'pull' = 'push',
) {
  const timestamp = new Date(Date.now() - daysAgo * DAY).toISOString()
  const res = await app.inject({
    method: 'POST',
    url: '/v1/registries/local/events',
    headers: {
      'content-type': 'application/vnd.docker.distribution.events.v1+json',
      'x-regent-event-secret': EVENTS_SECRET,
    },
    payload: {
      events: manifests.map((m) => ({
        id: randomUUID(),
        timestamp,
        action,
        target: { mediaType: m.mediaType, digest: m.digest, repository, ...(m.tag ? { tag: m.tag } : {}) },
        request: { useragent: 'docker/27.0' },
      })),
    },
  })
  if (res.statusCode !== 200) throw new Error(`events refused: ${res.statusCode} ${res.body}`)
}

export async function createPolicy(app: FastifyInstance, body: object, headers = payApprover) {
  const res = await app.inject({ method: 'POST', url: '/v1/policies', headers, payload: body })
  if (res.statusCode !== 201) throw new Error(`policy not created: ${res.statusCode} ${res.body}`)
  return res.json() as { id: string; name: string; version: number }
}

export async function preview(app: FastifyInstance, id: string, headers = payApprover) {
  const res = await app.inject({ method: 'POST', url: `/v1/policies/${id}/preview`, headers })
  if (res.statusCode !== 200) throw new Error(`preview failed: ${res.statusCode} ${res.body}`)
  return res.json() as PreviewBody
}

export interface PreviewBody {
  id: string | null
  counts: { expiredArtifacts: number; expiredTags: number; bytes: number; repositories: number }
  verdicts: {
    repository: string
    tag: string | null
    digest: string
    verdict: string
    decidedBy: string
    fact: string
  }[]
  guard: { tripped: boolean; reasons: string[] }
  diff: {
    against: { id: string } | null
    newlyExpired: { digest: string }[]
    noLongerExpired: { digest: string }[]
  }
  summary: string
}

/** Polls a run until it has ended. */
export async function waitForRun(app: FastifyInstance, policyId: string, runId: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await app.inject({ url: `/v1/policies/${policyId}/runs/${runId}`, headers: admin })
    const run = res.json()
    if (res.statusCode !== 200) throw new Error(`run ${runId}: ${res.statusCode} ${res.body}`)
    if (!['queued', 'running'].includes(run.state)) return run
    if (Date.now() > deadline) throw new Error(`run ${runId} stuck in ${run.state}`)
    await sleep(100)
  }
}

/** POST …/run (202 or it throws), then waits for the run to end. */
export async function runPolicy(app: FastifyInstance, policyId: string, headers = payApprover) {
  const res = await app.inject({ method: 'POST', url: `/v1/policies/${policyId}/run`, headers })
  if (res.statusCode !== 202) throw new Error(`run not queued: ${res.statusCode} ${res.body}`)
  return waitForRun(app, policyId, res.json().id)
}
