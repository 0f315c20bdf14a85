import t from 'tap'
import {
  type Classification,
  classifyNetworkError,
  classifyResponse,
  errorFor,
  isRetriable,
  ociErrorCode,
  parseRetryAfter,
} from '../../src/oci/errors.js'

const body = (code: string) => JSON.stringify({ errors: [{ code, message: 'm', detail: { secret: 'x' } }] })
const NOW = Date.parse('2026-01-01T00:00:00Z')

interface Row {
  row: string
  method: string
  status: number
  body?: string
  headers?: Record<string, string>
  expect: Classification
  /** What our API answers when a caller turns this outcome into an error; none for success. */
  error?: { code: string; statusCode: number }
}

/** The classification table, one row per registry answer, plus what our API answers with. */
const rows: Row[] = [
  {
    row: '202 → deleted',
    method: 'DELETE',
    status: 202,
    expect: { outcome: 'ok', status: 202 },
  },
  {
    row: '404 MANIFEST_UNKNOWN → not_found, code kept',
    method: 'DELETE',
    status: 404,
    body: body('MANIFEST_UNKNOWN'),
    expect: { outcome: 'not_found', status: 404, ociCode: 'MANIFEST_UNKNOWN' },
    error: { code: 'REGENT_REGISTRY_NOT_FOUND', statusCode: 404 },
  },
  {
    row: '404 NAME_UNKNOWN → not_found, code kept',
    method: 'GET',
    status: 404,
    body: body('NAME_UNKNOWN'),
    expect: { outcome: 'not_found', status: 404, ociCode: 'NAME_UNKNOWN' },
    error: { code: 'REGENT_REGISTRY_NOT_FOUND', statusCode: 404 },
  },
  {
    row: '404 BLOB_UNKNOWN → not_found, code kept',
    method: 'GET',
    status: 404,
    body: body('BLOB_UNKNOWN'),
    expect: { outcome: 'not_found', status: 404, ociCode: 'BLOB_UNKNOWN' },
    error: { code: 'REGENT_REGISTRY_NOT_FOUND', statusCode: 404 },
  },
  {
    row: '405 UNSUPPORTED (storage.delete.enabled=false) → delete_disabled',
    method: 'DELETE',
    status: 405,
    body: body('UNSUPPORTED'),
    expect: { outcome: 'delete_disabled', status: 405, ociCode: 'UNSUPPORTED' },
    error: { code: 'REGENT_REGISTRY_DELETE_DISABLED', statusCode: 409 },
  },
  {
    row: 'bare 405 (maintenance.readonly) → delete_disabled',
    method: 'DELETE',
    status: 405,
    expect: { outcome: 'delete_disabled', status: 405 },
    error: { code: 'REGENT_REGISTRY_DELETE_DISABLED', statusCode: 409 },
  },
  {
    row: '400 on DELETE (OCI: deletes disabled; 2.8 tag delete DIGEST_INVALID) → delete_disabled',
    method: 'DELETE',
    status: 400,
    body: body('DIGEST_INVALID'),
    expect: { outcome: 'delete_disabled', status: 400, ociCode: 'DIGEST_INVALID' },
    error: { code: 'REGENT_REGISTRY_DELETE_DISABLED', statusCode: 409 },
  },
  {
    row: '401 → unauthorized',
    method: 'HEAD',
    status: 401,
    expect: { outcome: 'unauthorized', status: 401 },
    error: { code: 'REGENT_REGISTRY_AUTH_FAILED', statusCode: 502 },
  },
  {
    row: '403 DENIED → denied',
    method: 'DELETE',
    status: 403,
    body: body('DENIED'),
    expect: { outcome: 'denied', status: 403, ociCode: 'DENIED' },
    error: { code: 'REGENT_REGISTRY_DENIED', statusCode: 502 },
  },
  {
    row: '429 with Retry-After seconds → rate_limited',
    method: 'GET',
    status: 429,
    body: body('TOOMANYREQUESTS'),
    headers: { 'retry-after': '7' },
    expect: { outcome: 'rate_limited', status: 429, ociCode: 'TOOMANYREQUESTS', retryAfterSeconds: 7 },
    error: { code: 'REGENT_REGISTRY_RATE_LIMITED', statusCode: 503 },
  },
  {
    row: '429 with Retry-After HTTP date → rate_limited',
    method: 'DELETE',
    status: 429,
    headers: { 'retry-after': new Date(NOW + 30_000).toUTCString() },
    expect: { outcome: 'rate_limited', status: 429, retryAfterSeconds: 30 },
    error: { code: 'REGENT_REGISTRY_RATE_LIMITED', statusCode: 503 },
  },
  {
    row: '502 → server_error',
    method: 'GET',
    status: 502,
    expect: { outcome: 'server_error', status: 502 },
    error: { code: 'REGENT_REGISTRY_UNAVAILABLE', statusCode: 502 },
  },
  {
    row: '503 with Retry-After → server_error, delay kept',
    method: 'GET',
    status: 503,
    headers: { 'retry-after': '3' },
    expect: { outcome: 'server_error', status: 503, retryAfterSeconds: 3 },
    error: { code: 'REGENT_REGISTRY_UNAVAILABLE', statusCode: 502 },
  },
  {
    row: '504 → server_error',
    method: 'HEAD',
    status: 504,
    expect: { outcome: 'server_error', status: 504 },
    error: { code: 'REGENT_REGISTRY_UNAVAILABLE', statusCode: 502 },
  },
  {
    row: 'an error code the spec does not define → UNKNOWN',
    method: 'GET',
    status: 500,
    body: body('SOMETHING_VENDOR_SPECIFIC'),
    expect: { outcome: 'server_error', status: 500, ociCode: 'UNKNOWN' },
    error: { code: 'REGENT_REGISTRY_UNAVAILABLE', statusCode: 502 },
  },
  {
    row: '400 MANIFEST_INVALID on PUT → rejected',
    method: 'PUT',
    status: 400,
    body: body('MANIFEST_INVALID'),
    expect: { outcome: 'rejected', status: 400, ociCode: 'MANIFEST_INVALID' },
    error: { code: 'REGENT_REGISTRY_REJECTED', statusCode: 502 },
  },
  {
    row: '405 on PUT (read-only registry) → rejected, not delete_disabled',
    method: 'PUT',
    status: 405,
    expect: { outcome: 'rejected', status: 405 },
    error: { code: 'REGENT_REGISTRY_REJECTED', statusCode: 502 },
  },
  {
    row: 'a redirect on a registry call → unknown',
    method: 'GET',
    status: 302,
    expect: { outcome: 'unknown', status: 302 },
    error: { code: 'REGENT_REGISTRY_ERROR', statusCode: 502 },
  },
]

t.test('every registry answer maps to one outcome and one REGENT_* error', async (t) => {
  for (const row of rows) {
    const c = classifyResponse({
      method: row.method,
      status: row.status,
      body: row.body,
      headers: row.headers,
      now: NOW,
    })
    t.same(c, row.expect, row.row)
    if (!row.error) continue
    const err = errorFor(c, { registry: 'reg', request: `${row.method} /v2/a/manifests/x` })
    t.match(
      err,
      { ...row.error, registry: 'reg', registryStatus: row.status, outcome: row.expect.outcome },
      `${row.row}: error`,
    )
    t.notMatch(err.message, 'secret', 'the error detail of the registry is not echoed')
  }
})

t.test('retries apply to network failures, 429 and 5xx only', async (t) => {
  const retriable = rows.filter((r) => isRetriable(r.expect)).map((r) => r.expect.status)
  t.same(retriable, [429, 429, 502, 503, 504, 500])
  t.ok(isRetriable({ outcome: 'network', network: 'reset' }))
})

t.test('network failures: timeouts and resets', async (t) => {
  const cases: Array<[string, Classification | undefined]> = [
    ['UND_ERR_HEADERS_TIMEOUT', { outcome: 'network', network: 'timeout' }],
    ['UND_ERR_BODY_TIMEOUT', { outcome: 'network', network: 'timeout' }],
    ['UND_ERR_CONNECT_TIMEOUT', { outcome: 'network', network: 'timeout' }],
    ['ECONNRESET', { outcome: 'network', network: 'reset' }],
    ['ECONNREFUSED', { outcome: 'network', network: 'reset' }],
    ['UND_ERR_SOCKET', { outcome: 'network', network: 'reset' }],
    ['UND_ERR_INVALID_ARG', undefined],
  ]
  for (const [code, expected] of cases) {
    t.same(classifyNetworkError(Object.assign(new Error('x'), { code })), expected, code)
  }
  t.equal(classifyNetworkError(new Error('no code')), undefined)
  const timeout = errorFor(
    { outcome: 'network', network: 'timeout' },
    { registry: 'reg', request: 'GET /v2/' },
  )
  t.match(timeout, { code: 'REGENT_REGISTRY_TIMEOUT', statusCode: 504 })
  const reset = errorFor({ outcome: 'network', network: 'reset' }, { registry: 'reg', request: 'GET /v2/' })
  t.match(reset, { code: 'REGENT_REGISTRY_UNAVAILABLE', statusCode: 502 })
})

t.test('Retry-After parsing and OCI error bodies', async (t) => {
  t.equal(parseRetryAfter('0', NOW), 0)
  t.equal(parseRetryAfter(' 120 ', NOW), 120)
  t.equal(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('soon', NOW), undefined)
  t.equal(parseRetryAfter(undefined, NOW), undefined)
  t.equal(ociErrorCode('404 page not found'), undefined, 'plain text body')
  t.equal(ociErrorCode('{"errors":[]}'), undefined)
  t.equal(
    ociErrorCode('{"errors":[{"code":"NAME_UNKNOWN"},{"code":"DENIED"}]}'),
    'NAME_UNKNOWN',
    'the first code',
  )
})
