import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import t from 'tap'
import { authHeaders, build } from '../helper.js'
import { logSink } from '../helpers/log-sink.js'

/** What Node or Fastify refuse before a route runs still answers in the REGENT_* envelope. */

const admin = authHeaders({ sub: 'root', roles: ['admin'] })

/** Sends raw bytes to the listening app and returns the raw answer. */
async function raw(
  app: FastifyInstance,
  request: string,
): Promise<{ status: number; headers: string; body: string }> {
  const address = app.server.address() as { port: number }
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(address.port, '127.0.0.1', () => socket.end(request))
    let data = ''
    socket.on('data', (chunk) => {
      data += chunk
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(data))
  })
  const [head = '', body = ''] = answer.split('\r\n\r\n')
  return { status: Number(head.split(' ')[1]), headers: head, body }
}

t.test('431 and malformed requests answered by the HTTP parser carry a REGENT_* code', async (t) => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const big = await raw(app, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.equal(big.status, 431)
  t.equal(JSON.parse(big.body).error.code, 'REGENT_HEADERS_TOO_LARGE')
  t.match(big.headers, /x-request-id: [0-9a-f-]{36}/i)
  const longUrl = await raw(app, `GET /v1/deletions?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.equal(longUrl.status, 431, 'a URL past the header limit too')
  t.equal(JSON.parse(longUrl.body).error.code, 'REGENT_HEADERS_TOO_LARGE')
  const garbage = await raw(app, 'NOT HTTP AT ALL\r\n\r\n')
  t.equal(garbage.status, 400)
  t.equal(JSON.parse(garbage.body).error.code, 'REGENT_BAD_REQUEST')
})

t.test('a path segment over 1,000 characters is 414; a 255-character repository name is not', async (t) => {
  const app = await build(t, { config: { registries: [{ name: 'local', url: 'http://127.0.0.1:9' }] } })
  const long = await app.inject({
    url: `/v1/registries/local/repositories/${'a'.repeat(1001)}/tags`,
    headers: admin,
  })
  t.equal(long.statusCode, 414)
  t.equal(long.json().error.code, 'REGENT_URI_TOO_LONG')
  const name = encodeURIComponent(`team/${'a'.repeat(250)}`)
  const fits = await app.inject({ url: `/v1/registries/local/repositories/${name}/tags`, headers: admin })
  t.not(fits.statusCode, 414, `a long repository name reaches the route (${fits.statusCode})`)
  const badEscape = await app.inject({ url: '/v1/deletions/%E0%A4%A', headers: admin })
  t.equal(badEscape.statusCode, 400)
  t.match(badEscape.json().error.code, /^REGENT_/)
})

t.test('a body over 1 MiB is 413 REGENT_BODY_TOO_LARGE', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers: { ...admin, 'content-type': 'application/json' },
    payload: JSON.stringify({ reason: 'x'.repeat(1_100_000) }),
  })
  t.equal(res.statusCode, 413)
  t.equal(res.json().error.code, 'REGENT_BODY_TOO_LARGE')
})

t.test('a token in the query string is refused, and never logged', async (t) => {
  const { lines, sink } = logSink()
  const app = await build(t, { loggerInstance: pino({ level: 'info' }, sink) })
  const token = 'eyJhbGciOiJIUzI1NiJ9.canary-token-in-query.sig'
  const res = await app.inject({ url: `/v1/me?access_token=${token}&x=1` })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error.code, 'REGENT_TOKEN_IN_QUERY')
  t.ok(
    lines.some((l) => l.includes('access_token=[redacted]')),
    'the logged URL shows the token was there',
  )
  t.notMatch(lines.join(''), /canary-token-in-query/, 'the token itself is in no log line')
})

t.test('an unpaired surrogate is refused before it can reach the audit chain', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/legal-holds',
    headers: { ...admin, 'content-type': 'application/json' },
    payload: '{"repository":"team/**","reason":"hold \\ud800 it","until":"2999-01-01T00:00:00Z"}',
  })
  t.equal(res.statusCode, 400)
  t.match(res.json().error, { code: 'REGENT_VALIDATION', details: [{ field: 'body.reason' }] })
  const verify = await app.inject({ url: '/v1/audit/verify', headers: admin })
  t.equal(verify.json().ok, true, 'the audit chain verifies')
})
