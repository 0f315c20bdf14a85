import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { authHeaders } from '../helper.js'

/** Shared by the deletion tests: a governance where payments deletes its own small things freely. */
export const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }], approvals: { ownRepositories: 'none' } },
  ],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
}

export const paula = authHeaders({ sub: 'paula', groups: ['payments'], roles: ['requester', 'approver'] })
export const admin = authHeaders({ sub: 'root', roles: ['admin'] })

/** Jobs settings that make retries and crash recovery fast enough for a test. */
export const fastJobs = { leaseMs: 1500, heartbeatMs: 300, pollMs: 200, backoffBaseMs: 50, backoffMaxMs: 200 }

export async function requestDeletion(
  app: FastifyInstance,
  body: { verb: string; targets: object[]; registry?: string },
  headers: Record<string, string> = paula,
) {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers,
    payload: { registry: 'local', reason: 'test', ...body },
  })
  if (res.statusCode !== 201) throw new Error(`deletion not created: ${res.statusCode} ${res.body}`)
  return res.json() as {
    id: string
    state: string
    jobId: string
    planHash: string
    plan: { items: { digest: string }[] }
  }
}

/** Polls a request until it reaches a state that is final for execution. */
export async function waitForState(
  app: FastifyInstance,
  id: string,
  states: string[] = ['succeeded', 'partially_failed', 'failed'],
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await app.inject({ url: `/v1/deletions/${id}`, headers: admin })
    const body = res.json()
    if (states.includes(body.state)) return body
    if (Date.now() > deadline) throw new Error(`deletion ${id} stuck in ${body.state}`)
    await sleep(100)
  }
}
