import type { FastifyRequest } from 'fastify'
import type { RequestContext } from '../auth/principal.js'

/**
 * Header text stored in the audit log is cut to this length: a client choosing a megabyte of
 * User-Agent must not get it written into a log that is never purged. (Request ids are at most 128
 * characters already: longer ones are replaced by a generated one.)
 */
export const MAX_USER_AGENT_LENGTH = 256

/** Where a request came from, for audit events: request id, source IP (trustProxy-aware), agent. */
export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent']
  return {
    requestId: request.id,
    sourceIp: request.ip,
    ...(agent ? { userAgent: agent.slice(0, MAX_USER_AGENT_LENGTH) } : {}),
  }
}
