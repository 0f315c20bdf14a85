import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { compileErrors, validate } from '@readme/openapi-parser'
import t from 'tap'
import { parse } from 'yaml'
import { build } from '../helper.js'

const run = promisify(execFile)
const committed = new URL('../../openapi.yaml', import.meta.url)
const cli = new URL('../../dist/openapi-cli.js', import.meta.url).pathname

t.test('openapi.yaml is a valid OpenAPI 3.1 document', async (t) => {
  const document = parse(readFileSync(committed, 'utf8'))
  const result = await validate(document)
  t.ok(result.valid, result.valid ? 'valid' : compileErrors(result))
  t.equal(document.openapi, '3.1.0')
  t.ok(document.components.securitySchemes.bearerAuth, 'the bearer security scheme is declared')
})

t.test(
  'openapi.yaml matches what the app generates, and the drift check fails on a changed copy',
  async (t) => {
    const app = await build(t)
    const served = (await app.inject({ url: '/openapi.json' })).json()
    t.same(served, parse(readFileSync(committed, 'utf8')), 'the committed file is what the app serves')

    const { stdout } = await run(process.execPath, [cli, '--check'])
    t.match(stdout, /matches/)
    const copy = path.join(tmpdir(), `regent-openapi-${process.pid}.yaml`)
    writeFileSync(
      copy,
      readFileSync(committed, 'utf8').replace('summary: "Liveness: the process is up"', 'summary: changed'),
    )
    await t.rejects(
      run(process.execPath, [cli, '--check', '--file', copy]),
      { code: 1 },
      'a stale file fails the check',
    )
  },
)

t.test('every REST route is in the document with its error bodies and security', async (t) => {
  const app = await build(t)
  const document = (await app.inject({ url: '/openapi.json' })).json()
  const operations = Object.entries(
    document.paths as Record<
      string,
      Record<string, { security?: unknown; responses: Record<string, unknown> }>
    >,
  ).flatMap(([route, methods]) => Object.entries(methods).map(([method, op]) => ({ route, method, op })))
  t.ok(operations.length >= 20, `${operations.length} operations`)
  for (const { route, method, op } of operations) {
    // Public: the links page and the probes.
    if (['/', '/graphql'].includes(route) || route.startsWith('/healthz') || route.startsWith('/readyz'))
      continue
    t.ok(op.security, `${method} ${route} declares its security`)
    t.ok(op.responses['401'], `${method} ${route} documents 401`)
  }
})

t.test('the Swagger UI page loads without a token', async (t) => {
  const app = await build(t)
  const page = await app.inject({ url: '/docs/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /swagger/i)
})
