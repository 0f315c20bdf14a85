import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../errors.js'
import { validationError } from '../lib/validate.js'

/**
 * Input no part of Regent can store or compare faithfully is refused at the door, for every route:
 * NUL bytes (Postgres text cannot hold them), unpaired UTF-16 surrogates (they turn into U+FFFD on
 * the way to Postgres, so what is stored differs from what was checked and hashed) and numbers
 * that are not finite (`1e309` parses as Infinity and passes an integer check). GraphQL variables
 * and literals and Slack's JSON payloads are checked with the same `textProblem`.
 */

const BAD_TEXT = 'must not contain NUL bytes or unpaired UTF-16 surrogates'
const NOT_FINITE = 'must be a finite number'

/** Why a string cannot be taken, or undefined. */
export function textProblem(value: string): string | undefined {
  return value.includes('\u0000') || !isWellFormed(value) ? BAD_TEXT : undefined
}

// String.prototype.isWellFormed is in Node 20 but not in the ES2023 library types.
const isWellFormed = (value: string): boolean =>
  (value as string & { isWellFormed(): boolean }).isWellFormed()

/**
 * The first string (key or value) or number anywhere in `value` that cannot be taken, as a failing
 * field in REST's validation format. Iterative: a deeply nested body must not exhaust the stack.
 */
export function inputProblem(value: unknown, part: string): { field: string; message: string } | undefined {
  const pending: [unknown, string][] = [[value, part]]
  while (pending.length > 0) {
    const [current, path] = pending.pop()!
    if (typeof current === 'string') {
      const problem = textProblem(current)
      if (problem) return { field: path, message: problem }
    } else if (typeof current === 'number') {
      if (!Number.isFinite(current)) return { field: path, message: NOT_FINITE }
    } else if (current !== null && typeof current === 'object') {
      for (const [key, inner] of Object.entries(current)) {
        if (textProblem(key)) return { field: path, message: `keys ${BAD_TEXT}` }
        pending.push([inner, `${path}.${key}`])
      }
    }
  }
  return undefined
}

/** Throws REST's REGENT_VALIDATION for the first part of the request that cannot be taken. */
export function refuseBadInput(parts: Record<string, unknown>): void {
  for (const [part, value] of Object.entries(parts)) {
    const problem = inputProblem(value, part)
    if (problem) {
      const instancePath = problem.field.slice(part.length).replaceAll('.', '/')
      throw validationError([{ instancePath, message: problem.message }], part)
    }
  }
}

function isWebSocketUpgrade(request: FastifyRequest): boolean {
  return request.headers.upgrade?.toLowerCase() === 'websocket'
}

export default fp(
  async (app) => {
    app.addHook('onRequest', async (request: FastifyRequest, _reply: FastifyReply) => {
      // Browsers cannot set headers on a WebSocket: that is the one place a token in the URL is
      // tolerated (and the logged URL is redacted). Anywhere else it would sit in access logs.
      const query = request.url.indexOf('?')
      if (
        query >= 0 &&
        /(?:^|&)access_token=/i.test(request.url.slice(query + 1)) &&
        !isWebSocketUpgrade(request)
      )
        throw new errors.TOKEN_IN_QUERY()
      const agent = request.headers['user-agent']
      if (agent !== undefined && textProblem(agent))
        throw new errors.BAD_REQUEST(`the User-Agent header ${BAD_TEXT}`)
    })
    // Before schema validation, so a bad string is named as such rather than as a pattern mismatch;
    // after it (preHandler) again for numbers, since query strings become numbers only there.
    app.addHook('preValidation', async (request: FastifyRequest) => {
      refuseBadInput({ params: request.params, querystring: request.query, body: request.body })
    })
    app.addHook('preHandler', async (request: FastifyRequest) => {
      refuseBadInput({ params: request.params, querystring: request.query, body: request.body })
    })
  },
  { name: 'input-guard', dependencies: ['error-handler'] },
)
