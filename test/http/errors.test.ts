import { pino } from 'pino'
import t from 'tap'
import { Type } from 'typebox'
import { build } from '../helper.js'
import { logSink } from '../helpers/log-sink.js'

t.test('an unknown route answers 404 JSON with a code and the request id', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'GET',
    url: '/v1/nothing-here?x=1',
    headers: { 'x-request-id': 'req-abc.1' },
  })
  t.equal(res.statusCode, 404)
  t.match(res.headers['content-type'], /application\/json/)
  t.same(res.json(), {
    error: {
      code: 'REGENT_NOT_FOUND',
      message: 'Route GET /v1/nothing-here not found',
      requestId: 'req-abc.1',
    },
  })
  t.equal(res.headers['x-request-id'], 'req-abc.1')
})

t.test('a request id that is not a safe token is replaced by a generated one', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { 'x-request-id': 'bad id\nwith newline' },
  })
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

const echoRoute = (app: import('fastify').FastifyInstance) => {
  app.post(
    '/test/echo',
    {
      config: { public: true },
      schema: {
        body: Type.Object({ name: Type.String({ minLength: 1 }), count: Type.Integer({ minimum: 1 }) }),
      },
    },
    async (request) => request.body,
  )
}

t.test('a malformed JSON body answers 400 REGENT_BAD_JSON', async (t) => {
  const app = await build(t, { beforeReady: echoRoute })
  const res = await app.inject({
    method: 'POST',
    url: '/test/echo',
    headers: { 'content-type': 'application/json' },
    payload: '{"name": "x",',
  })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error.code, 'REGENT_BAD_JSON')
  t.type(res.json().error.requestId, 'string')
})

t.test('a body failing its schema answers 400 REGENT_VALIDATION naming each failing field', async (t) => {
  const app = await build(t, { beforeReady: echoRoute })
  const res = await app.inject({ method: 'POST', url: '/test/echo', payload: { name: '', count: 0 } })
  t.equal(res.statusCode, 400)
  const body = res.json()
  t.equal(body.error.code, 'REGENT_VALIDATION')
  const fields = body.error.details.map((d: { field: string }) => d.field).sort()
  t.same(fields, ['body.count', 'body.name'])
})

t.test('an internal error answers 500 without internals; the log keeps the stack', async (t) => {
  const { lines, sink } = logSink()
  const app = await build(t, {
    loggerInstance: pino({ level: 'info' }, sink),
    beforeReady: (app) => {
      app.get('/test/boom', { config: { public: true } }, async () => {
        throw new Error('secret detail: connection to 10.1.2.3 refused')
      })
    },
  })
  const res = await app.inject({ method: 'GET', url: '/test/boom' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), {
    error: {
      code: 'REGENT_INTERNAL',
      message: 'Internal server error',
      requestId: res.headers['x-request-id'],
    },
  })
  t.notMatch(res.body, /secret detail|at .*\.ts|stack/)
  const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request failed')
  t.ok(logged, 'the failure is logged')
  t.match(logged.err.stack, /secret detail[\s\S]*errors\.test\.ts/)
})

t.test('authorization headers never reach the log', async (t) => {
  const { lines, sink } = logSink()
  const { LOG_REDACT } = await import('../../src/app.js')
  const app = await build(t, {
    loggerInstance: pino({ level: 'trace', redact: LOG_REDACT }, sink),
    beforeReady: (app) => {
      app.get('/test/headers', { config: { public: true } }, async (request) => {
        request.log.info({ req: { headers: request.headers } }, 'headers seen')
        return {}
      })
    },
  })
  await app.inject({
    method: 'GET',
    url: '/test/headers',
    headers: { authorization: 'Bearer canary-token-123' },
  })
  t.ok(lines.length > 0)
  t.notMatch(lines.join(''), /canary-token-123/)
})
