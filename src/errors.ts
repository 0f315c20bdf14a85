import createError from '@fastify/error'
import { chatopsErrors } from './chatops/errors.js'
import { dbErrors } from './db/errors.js'
import { gcErrors } from './gc/errors.js'
import { jobErrors } from './jobs/errors.js'
import { notificationErrors } from './notifications/errors.js'
import { ociErrors } from './oci/errors.js'
import { registryEventErrors } from './registry-events/errors.js'
import { retentionErrors } from './retention/errors.js'
import { usageErrors } from './usage/errors.js'

/**
 * The one error catalogue. Every error Regent answers with has a stable `REGENT_*` code, an HTTP
 * status, and the same code as GraphQL `extensions.code`. Messages of 4xx errors are shown to the
 * caller; 5xx messages never are (see the error handler in app.ts).
 */
export const errors = {
  NOT_FOUND: createError('REGENT_NOT_FOUND', 'Route %s %s not found', 404),
  VALIDATION: createError('REGENT_VALIDATION', 'Invalid request: %s', 400),
  BAD_JSON: createError('REGENT_BAD_JSON', 'Request body is not valid JSON', 400),
  UNSUPPORTED_MEDIA_TYPE: createError('REGENT_UNSUPPORTED_MEDIA_TYPE', 'Unsupported content type: %s', 415),
  BODY_TOO_LARGE: createError('REGENT_BODY_TOO_LARGE', 'Request body is too large', 413),
  BAD_REQUEST: createError('REGENT_BAD_REQUEST', 'Bad request: %s', 400),
  URI_TOO_LONG: createError('REGENT_URI_TOO_LONG', 'A path segment is longer than %s characters', 414),
  HEADERS_TOO_LARGE: createError(
    'REGENT_HEADERS_TOO_LARGE',
    'The request line and headers are too large',
    431,
  ),
  REQUEST_TIMEOUT: createError('REGENT_REQUEST_TIMEOUT', 'The request did not arrive in time', 408),
  TOKEN_IN_QUERY: createError(
    'REGENT_TOKEN_IN_QUERY',
    'Tokens are not taken from the query string (they end up in logs and proxies): send Authorization: Bearer',
    400,
  ),
  RATE_LIMITED: createError('REGENT_RATE_LIMITED', 'Too many requests: try again in %s seconds', 429),
  BAD_GRAPHQL: createError('REGENT_BAD_GRAPHQL', 'Not a GraphQL request: %s', 400),
  GRAPHQL_TOO_COMPLEX: createError('REGENT_GRAPHQL_TOO_COMPLEX', 'The query is too costly: %s', 400),
  GRAPHQL_INTROSPECTION_DISABLED: createError(
    'REGENT_GRAPHQL_INTROSPECTION_DISABLED',
    'Introspection is turned off on this server (graphql.introspection)',
    400,
  ),
  GRAPHQL_TIMEOUT: createError('REGENT_GRAPHQL_TIMEOUT', 'The query did not finish within %s ms', 503),
  INTERNAL: createError('REGENT_INTERNAL', 'Internal server error', 500),
  UNAVAILABLE: createError('REGENT_UNAVAILABLE', 'Service unavailable: %s', 503),

  UNAUTHENTICATED: createError('REGENT_UNAUTHENTICATED', 'A valid bearer token is required', 401),
  FORBIDDEN: createError('REGENT_FORBIDDEN', 'Forbidden: %s', 403),
  ON_BEHALF_NOT_ALLOWED: createError(
    'REGENT_ON_BEHALF_NOT_ALLOWED',
    'Only a token with the bot role may act on behalf of someone (X-Regent-On-Behalf-Of)',
    403,
  ),

  BOT_MAY_NOT_ACT_FOR: createError(
    'REGENT_ON_BEHALF_NOT_ALLOWED',
    'Bot %s may not act on behalf of %s (auth.bots)',
    403,
  ),

  INVALID_CURSOR: createError('REGENT_INVALID_CURSOR', 'The cursor is not one this API handed out', 400),
  TAG_NOT_FOUND: createError('REGENT_TAG_NOT_FOUND', 'Tag %s not found in registry %s', 404),
  REGISTRY_UNKNOWN: createError('REGENT_REGISTRY_UNKNOWN', 'Registry %s is not configured', 404),

  DELETION_NOT_FOUND: createError('REGENT_DELETION_NOT_FOUND', 'Deletion request %s not found', 404),
  ILLEGAL_TRANSITION: createError('REGENT_ILLEGAL_TRANSITION', 'A request in state %s cannot become %s', 409),
  IDEMPOTENCY_CONFLICT: createError(
    'REGENT_IDEMPOTENCY_CONFLICT',
    'Idempotency-Key %s was already used with a different request body',
    409,
  ),
  PROTECTED: createError('REGENT_PROTECTED', 'Refused: %s', 409),
  HELD: createError('REGENT_HELD', 'Refused: %s', 409),
  INDEX_CHILD_IN_USE: createError('REGENT_INDEX_CHILD_IN_USE', 'Refused: %s', 409),
  UNTAG_IMPOSSIBLE: createError('REGENT_UNTAG_IMPOSSIBLE', 'Refused: %s', 409),
  LEGACY_TARGET: createError('REGENT_LEGACY_TARGET', 'Refused: %s', 422),
  NOTHING_TO_DELETE: createError('REGENT_NOTHING_TO_DELETE', 'The targets match nothing: %s', 422),
  PLAN_CHANGED: createError(
    'REGENT_PLAN_CHANGED',
    "The plan you reviewed (%s) is not this request's plan (%s)",
    409,
  ),
  REQUEST_EXPIRED: createError(
    'REGENT_REQUEST_EXPIRED',
    'Deletion request %s expired awaiting approval',
    409,
  ),
  ALREADY_DECIDED: createError('REGENT_ALREADY_DECIDED', '%s already decided on this request', 409),
  RESTORE_WINDOW_CLOSED: createError(
    'REGENT_RESTORE_WINDOW_CLOSED',
    'Deletion %s cannot be restored: %s',
    409,
  ),
  HOLD_NOT_FOUND: createError('REGENT_HOLD_NOT_FOUND', 'Legal hold %s not found', 404),
  SELF_APPROVAL: createError('REGENT_SELF_APPROVAL', 'Self-approval refused: %s', 403),
  CREDENTIAL_ALREADY_DECIDED: createError(
    'REGENT_CREDENTIAL_ALREADY_DECIDED',
    'The credential %s already decided on this request (for %s): a token counts once, whoever it relays for',
    403,
  ),
  APPROVER_NOT_ELIGIBLE: createError('REGENT_APPROVER_NOT_ELIGIBLE', 'Not an eligible approver: %s', 403),
  REQUESTER_NOT_ELIGIBLE: createError(
    'REGENT_REQUESTER_NOT_ELIGIBLE',
    'Not allowed to request this deletion: %s',
    403,
  ),

  // Features' errors, each declared beside the code that raises it and part of the same catalogue:
  // the database's (busy, unreachable), then the registry protocol client's (invalid references,
  // registry faults), and so on.
  ...dbErrors,
  ...ociErrors,
  ...jobErrors,
  ...gcErrors,
  ...retentionErrors,
  ...registryEventErrors,
  ...chatopsErrors,
  ...notificationErrors,
  ...usageErrors,
} as const

export type RegentErrorCode = `REGENT_${string}`

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: {
    code: string
    message: string
    requestId: string
    details?: unknown
  }
}

export function isRegentCode(code: unknown): code is RegentErrorCode {
  return typeof code === 'string' && code.startsWith('REGENT_')
}
