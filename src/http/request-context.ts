import type { FastifyRequest } from 'fastify'
import type { RequestContext } from '../auth/principal.js'

/** Where a request came from, for audit events: request id, source IP (trustProxy-aware), agent. */
export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent']
  return { requestId: request.id, sourceIp: request.ip, ...(agent ? { userAgent: agent } : {}) }
}
