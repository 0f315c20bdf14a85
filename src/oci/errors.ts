import createError from '@fastify/error'

/**
 * Errors of the registry client and the classifier of registry answers: the one place that decides
 * what an answer means, whether it may be retried, and which `REGENT_*` error it becomes.
 *
 * HTTP statuses are the ones *our* API answers with, not the registry's:
 * - a fault of the registry or of its token server is 502 (504 for a timeout, 503 when it asks us
 *   to slow down), because the caller did nothing wrong;
 * - `REGENT_REGISTRY_NOT_FOUND` is 404: the thing asked for does not exist;
 * - `REGENT_REGISTRY_DELETE_DISABLED` is 409: the request is fine but conflicts with how the
 *   registry is configured (`storage.delete.enabled: false`, read-only mode, a pull-through cache);
 *   422 would say the request itself is malformed, which it is not.
 * - `REGENT_LEGACY_MANIFEST` is 422: the target is a Docker schema 1 manifest that Regent refuses to
 *   change (its digest covers a signature, and distribution 2.8+ cannot even store one again).
 *
 * Every error carries the registry's status and OCI error code (`registryStatus`, `ociCode`), never a
 * header, credential or token: messages are built only from the method, path, status and code.
 */
export const ociErrors = {
  INVALID_REFERENCE: createError('REGENT_INVALID_REFERENCE', 'Invalid %s: %s', 400),
  LEGACY_MANIFEST: createError(
    'REGENT_LEGACY_MANIFEST',
    'Manifest %s is a legacy Docker schema 1 manifest (%s); Regent does not change legacy manifests',
    422,
  ),
  MANIFEST_INVALID: createError(
    'REGENT_MANIFEST_INVALID',
    'Registry returned a manifest Regent cannot read: %s',
    502,
  ),
  IMAGE_CONFIG_INVALID: createError(
    'REGENT_IMAGE_CONFIG_INVALID',
    'Registry returned an image config Regent cannot read: %s',
    502,
  ),
  RESPONSE_TOO_LARGE: createError(
    'REGENT_REGISTRY_RESPONSE_TOO_LARGE',
    'Registry answer to %s is larger than the %d bytes allowed',
    502,
  ),
  REGISTRY_NOT_FOUND: createError('REGENT_REGISTRY_NOT_FOUND', 'Registry %s: %s not found (%s)', 404),
  REGISTRY_DELETE_DISABLED: createError(
    'REGENT_REGISTRY_DELETE_DISABLED',
    'Registry %s refuses deletes: %s answered %s',
    409,
  ),
  REGISTRY_REJECTED: createError('REGENT_REGISTRY_REJECTED', 'Registry %s rejected %s: %s', 502),
  REGISTRY_DENIED: createError('REGENT_REGISTRY_DENIED', 'Registry %s denied %s to Regent', 502),
  REGISTRY_AUTH_FAILED: createError(
    'REGENT_REGISTRY_AUTH_FAILED',
    'Registry %s: authentication failed: %s',
    502,
  ),
  REGISTRY_RATE_LIMITED: createError('REGENT_REGISTRY_RATE_LIMITED', 'Registry %s is rate limiting %s', 503),
  REGISTRY_TIMEOUT: createError('REGENT_REGISTRY_TIMEOUT', 'Registry %s did not answer %s in time', 504),
  REGISTRY_UNAVAILABLE: createError('REGENT_REGISTRY_UNAVAILABLE', 'Registry %s is unavailable: %s', 502),
  REGISTRY_ERROR: createError(
    'REGENT_REGISTRY_ERROR',
    'Registry %s gave an unexpected answer to %s: %s',
    502,
  ),
  DIGEST_MISMATCH: createError(
    'REGENT_DIGEST_MISMATCH',
    'Registry %s: content of %s does not match its digest (%s)',
    502,
  ),
  TOKEN_REALM_REFUSED: createError('REGENT_TOKEN_REALM_REFUSED', 'Registry %s: token realm refused: %s', 502),
  CREDENTIALS_MISSING: createError('REGENT_REGISTRY_CREDENTIALS_MISSING', 'Registry %s: %s', 500),
} as const

/** How a registry answer (or the lack of one) is understood. */
export type Outcome =
  | 'ok'
  | 'not_found'
  | 'delete_disabled'
  | 'unauthorized'
  | 'denied'
  | 'rate_limited'
  | 'server_error'
  | 'network'
  /** any other 4xx: the registry refused the request as invalid (e.g. MANIFEST_INVALID on a PUT). */
  | 'rejected'
  | 'unknown'

export interface Classification {
  outcome: Outcome
  /** HTTP status of the registry answer; absent for network failures. */
  status?: number
  /** First OCI error code of the body; codes the spec does not define are reported as `UNKNOWN`. */
  ociCode?: string
  /** From `Retry-After` (delta-seconds or HTTP-date), in whole seconds. */
  retryAfterSeconds?: number
  /** For `network`: `timeout` (connect, headers or body) or `reset` (anything else on the wire). */
  network?: 'timeout' | 'reset'
}

/** What a registry error carries besides code and status. Never credentials or headers. */
export interface RegistryErrorDetails {
  registry?: string
  outcome?: Outcome
  registryStatus?: number
  ociCode?: string
  retryAfterSeconds?: number
}

export type RegistryError = Error & { code: string; statusCode?: number } & RegistryErrorDetails

/** Error codes from the distribution spec (`docs/spec/api.md`, OCI `spec.md` §Error Codes). */
const KNOWN_OCI_CODES = new Set([
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  'UNKNOWN',
])

type HeaderValue = string | string[] | undefined

export interface ResponseToClassify {
  method: string
  status: number
  headers?: Record<string, HeaderValue>
  body?: Buffer | string
  /** Clock for HTTP-date `Retry-After`; tests pin it. */
  now?: number
}

/**
 * The one table from registry answer to outcome. DELETE is special: the OCI spec says a
 * registry with deletes disabled MUST answer 400 or 405, and distribution answers 405 `UNSUPPORTED`
 * (`registry/api/errcode/register.go`) — or, in read-only mode, a bare 405 without a body. For a
 * DELETE by tag distribution 2.8 answers 400 `DIGEST_INVALID`: the tag delete is not possible there,
 * which for the caller is the same "cannot delete this way" outcome.
 */
export function classifyResponse(res: ResponseToClassify): Classification {
  const { status } = res
  const ociCode = ociErrorCode(res.body)
  const base: Classification =
    ociCode === undefined ? { outcome: 'unknown', status } : { outcome: 'unknown', status, ociCode }
  if (status >= 200 && status < 300) return { ...base, outcome: 'ok' }
  if (status === 401) return { ...base, outcome: 'unauthorized' }
  if (status === 403) return { ...base, outcome: 'denied' }
  if (status === 404) return { ...base, outcome: 'not_found' }
  if (status === 429 || ociCode === 'TOOMANYREQUESTS')
    return withRetryAfter({ ...base, outcome: 'rate_limited' }, res)
  if (res.method === 'DELETE' && (status === 400 || status === 405 || ociCode === 'UNSUPPORTED')) {
    return { ...base, outcome: 'delete_disabled' }
  }
  if (status >= 500) return withRetryAfter({ ...base, outcome: 'server_error' }, res)
  if (status >= 400) return { ...base, outcome: 'rejected' }
  return base
}

function withRetryAfter(c: Classification, res: ResponseToClassify): Classification {
  const seconds = parseRetryAfter(headerValue(res.headers?.['retry-after']), res.now ?? Date.now())
  return seconds === undefined ? c : { ...c, retryAfterSeconds: seconds }
}

/** `Retry-After` is delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const at = Date.parse(trimmed)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, Math.ceil((at - now) / 1000))
}

/** The first code of an OCI error body `{"errors":[{"code":…}]}`; unknown codes become `UNKNOWN`. */
export function ociErrorCode(body: Buffer | string | undefined): string | undefined {
  if (body === undefined || body.length === 0) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'))
  } catch {
    return undefined
  }
  const first = (parsed as { errors?: unknown })?.errors
  if (!Array.isArray(first) || first.length === 0) return undefined
  const code = (first[0] as { code?: unknown })?.code
  if (typeof code !== 'string') return undefined
  return KNOWN_OCI_CODES.has(code) ? code : 'UNKNOWN'
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
])
const RESET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
])

/** A failure below HTTP (undici `UND_ERR_*` or a socket errno), or undefined when it is not one. */
export function classifyNetworkError(err: unknown): Classification | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  if (TIMEOUT_CODES.has(code)) return { outcome: 'network', network: 'timeout' }
  if (RESET_CODES.has(code)) return { outcome: 'network', network: 'reset' }
  return undefined
}

/**
 * GET/HEAD are retried for these outcomes: a dropped connection, 429 and 5xx (502/503/504 above
 * all) are passing states of the registry or of what stands in front of it; every other answer
 * would come back the same.
 */
export function isRetriable(c: Classification): boolean {
  return c.outcome === 'network' || c.outcome === 'rate_limited' || c.outcome === 'server_error'
}

export interface ErrorContext {
  registry: string
  /** `METHOD /path` of the request, without query secrets (there are none in registry paths). */
  request: string
}

/** Turns a non-ok classification into the matching `REGENT_*` error. */
export function errorFor(c: Classification, ctx: ErrorContext): RegistryError {
  const answered = describeAnswer(c)
  let err: RegistryError
  switch (c.outcome) {
    case 'not_found':
      err = new ociErrors.REGISTRY_NOT_FOUND(ctx.registry, ctx.request, c.ociCode ?? 'no error code')
      break
    case 'delete_disabled':
      err = new ociErrors.REGISTRY_DELETE_DISABLED(ctx.registry, ctx.request, answered)
      break
    case 'unauthorized':
      err = new ociErrors.REGISTRY_AUTH_FAILED(ctx.registry, `${ctx.request} answered ${answered}`)
      break
    case 'denied':
      err = new ociErrors.REGISTRY_DENIED(ctx.registry, ctx.request)
      break
    case 'rate_limited':
      err = new ociErrors.REGISTRY_RATE_LIMITED(ctx.registry, ctx.request)
      break
    case 'network':
      err =
        c.network === 'timeout'
          ? new ociErrors.REGISTRY_TIMEOUT(ctx.registry, ctx.request)
          : new ociErrors.REGISTRY_UNAVAILABLE(ctx.registry, `${ctx.request}: connection failed`)
      break
    case 'server_error':
      err = new ociErrors.REGISTRY_UNAVAILABLE(ctx.registry, `${ctx.request} answered ${answered}`)
      break
    case 'rejected':
      err = new ociErrors.REGISTRY_REJECTED(ctx.registry, ctx.request, answered)
      break
    default:
      err = new ociErrors.REGISTRY_ERROR(ctx.registry, ctx.request, answered)
  }
  return withDetails(err, { registry: ctx.registry, ...detailsOf(c) })
}

function describeAnswer(c: Classification): string {
  if (c.status === undefined) return c.network ?? 'no answer'
  return c.ociCode === undefined ? String(c.status) : `${c.status} ${c.ociCode}`
}

function detailsOf(c: Classification): RegistryErrorDetails {
  const d: RegistryErrorDetails = { outcome: c.outcome }
  if (c.status !== undefined) d.registryStatus = c.status
  if (c.ociCode !== undefined) d.ociCode = c.ociCode
  if (c.retryAfterSeconds !== undefined) d.retryAfterSeconds = c.retryAfterSeconds
  return d
}

export function withDetails<E extends Error>(
  err: E,
  details: RegistryErrorDetails,
): E & RegistryErrorDetails {
  return Object.assign(err, details)
}

export function isRegistryError(err: unknown): err is RegistryError {
  const code = (err as { code?: unknown } | null)?.code
  return err instanceof Error && typeof code === 'string' && code.startsWith('REGENT_')
}

function headerValue(v: HeaderValue): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
