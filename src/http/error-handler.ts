import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { databaseUnavailable } from '../db/errors.js'
import { type ErrorBody, errors, isRegentCode } from '../errors.js'
import { validationError } from '../lib/validate.js'

/**
 * Maps every error to `{ error: { code, message, requestId } }`. 4xx messages are the caller's to
 * read; 5xx bodies say only "Internal server error" while the log keeps the error and its stack.
 */
const FASTIFY_TO_REGENT: Record<string, { code: string; status: number; message?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: 'REGENT_BAD_JSON',
    status: 400,
    message: new errors.BAD_JSON().message,
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'REGENT_BAD_JSON', status: 400, message: 'Request body is empty' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'REGENT_BODY_TOO_LARGE', status: 413 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'REGENT_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'REGENT_BAD_REQUEST', status: 400 },
}

export function errorBody(
  request: FastifyRequest,
  code: string,
  message: string,
  details?: unknown,
): ErrorBody {
  return { error: { code, message, requestId: request.id, ...(details === undefined ? {} : { details }) } }
}

function handleError(this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err.validation) {
    const refused = validationError(err.validation, err.validationContext ?? 'body')
    return reply
      .code(400)
      .send(
        errorBody(request, 'REGENT_VALIDATION', refused.message, (refused as { details?: unknown }).details),
      )
  }

  const known = err.code ? FASTIFY_TO_REGENT[err.code] : undefined
  if (known) {
    return reply.code(known.status).send(errorBody(request, known.code, known.message ?? err.message))
  }

  const status = err.statusCode ?? 500
  if (status < 500 && status >= 400) {
    const code = isRegentCode(err.code) ? err.code : 'REGENT_BAD_REQUEST'
    request.log.info({ err }, 'request refused')
    for (const [name, value] of Object.entries((err as { headers?: Record<string, string> }).headers ?? {})) {
      reply.header(name, value)
    }
    return reply
      .code(status)
      .send(errorBody(request, code, err.message, (err as { details?: unknown }).details))
  }

  const unavailable = databaseUnavailable(err)
  if (unavailable) {
    request.log.warn({ err }, 'request failed: the database is busy or unreachable')
    return reply
      .code(unavailable.statusCode)
      .header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS))
      .send(errorBody(request, unavailable.code, unavailable.message))
  }

  request.log.error({ err }, 'request failed')
  // A catalogued 5xx (a registry that timed out, a dependency that is down) is named by its code and
  // its message, which the catalogue builds from safe parts only; anything else is an internal error.
  if (isRegentCode(err.code) && err.code !== 'REGENT_INTERNAL') {
    return reply.code(status).send(errorBody(request, err.code, err.message))
  }
  const internal = new errors.INTERNAL()
  return reply.code(internal.statusCode).send(errorBody(request, internal.code, internal.message))
}

/** What a 503 for a busy or unreachable database asks the caller to wait before trying again. */
const DATABASE_RETRY_AFTER_SECONDS = 2

/** Longest path parameter taken (Fastify answers longer ones through frameworkErrors, as 414). */
export const MAX_PARAM_LENGTH = 1000

/**
 * Errors Fastify raises before a route is found (a URL that does not decode, a path segment above
 * MAX_PARAM_LENGTH), answered in the same envelope as everything else.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const refused =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new errors.URI_TOO_LONG(MAX_PARAM_LENGTH)
      : new errors.BAD_REQUEST('the URL is not valid')
  request.log.info({ code: err.code }, 'request refused')
  reply.code(refused.statusCode).send(errorBody(request, refused.code, refused.message))
}

const CLIENT_ERRORS: Record<string, InstanceType<(typeof errors)[keyof typeof errors]>> = {
  HPE_HEADER_OVERFLOW: new errors.HEADERS_TOO_LARGE(),
  ERR_HTTP_REQUEST_TIMEOUT: new errors.REQUEST_TIMEOUT(),
}

/**
 * Node's HTTP parser refuses some requests before Fastify sees them (headers or URL above the
 * 16 KiB header limit, a malformed request line, a request that took too long). The answer is
 * written on the raw socket, still in the REGENT_* envelope; there is no request id yet, so one is
 * made up for the log line and the answer.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const refused = (err.code && CLIENT_ERRORS[err.code]) || new errors.BAD_REQUEST('the request is malformed')
  const requestId = randomUUID()
  this.log.info({ code: err.code, requestId }, 'request refused by the HTTP parser')
  const body = JSON.stringify({ error: { code: refused.code, message: refused.message, requestId } })
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${refused.statusCode} ${STATUS_TEXT[refused.statusCode] ?? 'Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(err)
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
}

export default fp(
  async (app) => {
    app.setErrorHandler(handleError)
    app.setNotFoundHandler((request, reply) => {
      const notFound = new errors.NOT_FOUND(request.method, request.url.split('?')[0])
      return reply.code(404).send(errorBody(request, notFound.code, notFound.message))
    })
  },
  { name: 'error-handler' },
)
