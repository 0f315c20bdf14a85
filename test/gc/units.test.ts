import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { childEnv, commandFailure, runCommand } from '../../src/gc/command.js'
import type { HttpExecutor } from '../../src/gc/config-schema.js'
import { runExecutor } from '../../src/gc/executors.js'
import { eligibleShare, parseGcOutput } from '../../src/gc/output.js'
import { parseCron } from '../../src/lib/cron.js'

const at = (iso: string) => new Date(iso)

t.test('cron: steps, ranges, lists, names, macros and the day-of-month OR day-of-week rule', async (t) => {
  const quarter = parseCron('*/15 * * * *')
  t.ok(quarter.matches(at('2026-03-02T10:00:00Z')))
  t.ok(quarter.matches(at('2026-03-02T10:45:59Z')), 'any second of the minute')
  t.notOk(quarter.matches(at('2026-03-02T10:07:00Z')))

  const weekdays = parseCron('0 3 * * 1-5')
  t.ok(weekdays.matches(at('2026-03-06T03:00:00Z')), 'a Friday')
  t.notOk(weekdays.matches(at('2026-03-07T03:00:00Z')), 'not a Saturday')
  t.notOk(weekdays.matches(at('2026-03-06T04:00:00Z')))

  const either = parseCron('0 0 1 * mon')
  t.ok(either.matches(at('2026-03-01T00:00:00Z')), 'the 1st (a Sunday)')
  t.ok(either.matches(at('2026-03-09T00:00:00Z')), 'a Monday')
  t.notOk(either.matches(at('2026-03-10T00:00:00Z')), 'neither')

  t.ok(parseCron('30 2 * jan,jul 7').matches(at('2026-07-05T02:30:00Z')), '7 is Sunday, months by name')
  t.ok(parseCron('@daily').matches(at('2026-07-05T00:00:00Z')))
  t.notOk(parseCron('@daily').matches(at('2026-07-05T00:01:00Z')))
  t.ok(parseCron('5/20 * * * *').matches(at('2026-07-05T00:45:00Z')), '`a/n` runs to the end of the field')
  t.ok(parseCron('0 */6 * * *').matches(at('2026-07-05T18:00:00Z')))

  for (const bad of ['* * * *', '60 * * * *', '5-1 * * * *', 'x * * * *', '*/0 * * * *', '* * 0 * *']) {
    t.throws(() => parseCron(bad), /invalid cron expression/, bad)
  }
})

// What distribution 2.8.2 printed for `garbage-collect --dry-run` on a test registry.
const DISTRIBUTION_OUTPUT = `payments/api
payments/api: marking manifest sha256:399c66ab1824f3757590b4d2fa08fec4fd43442e75b73d6b0651da17e1641135 
payments/api: marking blob sha256:88ebf77f1315c113fa5014a4dda2a28854d5a9363b9f237019c6baf9fd6163bc
payments/api: marking blob sha256:6d94564b00c9024e459e61acb10536c8218391450e868746ceef461db913fc53
manifest eligible for deletion: sha256:8453f3e78af80052d4106a83b9ad48cc9287546937675003e3356381afb529e3

3 blobs marked, 2 blobs and 1 manifests eligible for deletion
blob eligible for deletion: sha256:6dfd513df8fd0a41f9aa9dd8af9652c3281c409e28dda73bec1c7eae58ab3476
blob eligible for deletion: sha256:7a028cc1d1b6d38a456c6a4da43f876ff1291620101413c6cbd177222917456e
`

t.test('the collector output is parsed: counts, eligible digests, Harbor’s freed space', async (t) => {
  const report = parseGcOutput(DISTRIBUTION_OUTPUT)
  t.equal(report.markedBlobs, 3)
  t.equal(report.eligibleBlobs, 2)
  t.equal(report.eligibleManifests, 1)
  t.same(report.eligibleBlobDigests, [
    'sha256:6dfd513df8fd0a41f9aa9dd8af9652c3281c409e28dda73bec1c7eae58ab3476',
    'sha256:7a028cc1d1b6d38a456c6a4da43f876ff1291620101413c6cbd177222917456e',
  ])
  t.same(report.eligibleManifestDigests, [
    'sha256:8453f3e78af80052d4106a83b9ad48cc9287546937675003e3356381afb529e3',
  ])
  t.equal(eligibleShare(report), 0.4)

  const harbor = parseGcOutput(
    '2026-03-01T00:00:00Z [INFO] 7 blobs and 1 manifests eligible for deletion\n' +
      '2026-03-01T00:00:01Z [INFO] 7 blobs and 1 manifests are actually deleted\n' +
      '2026-03-01T00:00:01Z [INFO] The GC job actual frees up 34 MB space.\n',
  )
  t.equal(harbor.eligibleBlobs, 7)
  t.equal(harbor.markedBlobs, null)
  t.equal(harbor.collectedBlobs, 7)
  t.equal(harbor.reportedFreedBytes, 34 * 1024 * 1024)
  t.equal(eligibleShare(harbor), null, 'no share without the marked count')
})

t.test(
  'commands run without a shell, with only PATH and HOME from the environment, and time out',
  async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'regent-gc-command-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const marker = path.join(dir, 'injected')
    const env = childEnv({ PATH: process.env.PATH, HOME: '/nonexistent', DATABASE_URL: 'postgres://secret' })
    const lines: string[] = []
    const echoed = await runCommand(
      { argv: ['echo', `a; touch ${marker}`], env, timeoutMs: 5000 },
      { onLine: (l) => lines.push(l) },
    )
    t.equal(commandFailure(echoed, 5000), undefined)
    t.same(lines, [`a; touch ${marker}`], 'the argument reached echo as one literal string')
    t.notOk(existsSync(marker), 'no shell ran the `touch`')

    const printed = await runCommand({ argv: ['env'], env: { ...env, EXTRA: '1' }, timeoutMs: 5000 })
    // (tap's process-info hook adds variables of its own to every child of a test, so only these.)
    t.match(printed.tail, /^EXTRA=1$/m)
    t.match(printed.tail, /^HOME=\/nonexistent$/m)
    t.match(printed.tail, /^PATH=/m)
    t.notMatch(
      printed.tail,
      /DATABASE_URL|postgres:\/\/secret/,
      'DATABASE_URL and the rest of the environment stay behind',
    )

    const slow = await runCommand({ argv: ['sleep', '5'], env, timeoutMs: 200 })
    t.ok(slow.timedOut)
    t.match(commandFailure(slow, 200), /timed out after 200 ms/)
    t.ok(slow.durationMs < 3000)

    const missing = await runCommand({ argv: ['/nonexistent/registry'], env, timeoutMs: 1000 })
    t.match(commandFailure(missing, 1000), /could not start/)
    const failing = await runCommand({ argv: ['false'], env, timeoutMs: 1000 })
    t.equal(commandFailure(failing, 1000), 'exited with status 1')
  },
)

t.test('the http executor triggers a Harbor-style GC, polls it and reads its log', async (t) => {
  const seen: { method: string; url: string; body: string; authorization?: string }[] = []
  let polls = 0
  let outcome = 'Success'
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => {
      body += chunk
    })
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        body,
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      })
      if (req.method === 'POST' && req.url === '/api/v2.0/system/gc/schedule') {
        res.writeHead(201, { location: '/api/v2.0/system/gc/42' }).end()
      } else if (req.url === '/api/v2.0/system/gc/42') {
        polls++
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ id: 42, job_status: polls < 3 ? 'Running' : outcome }))
      } else if (req.url === '/api/v2.0/system/gc/42/log') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end('7 blobs and 1 manifests eligible for deletion\nThe GC job actual frees up 34 MB space.\n')
      } else res.writeHead(404).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const executor: HttpExecutor = {
    kind: 'http',
    url: `${base}/api/v2.0/system/gc/schedule`,
    method: 'POST',
    auth: { username: 'admin', passwordEnv: 'HARBOR_PASSWORD' },
    logUrl: `${base}/api/v2.0/system/gc/{id}/log`,
    statusField: 'job_status',
    successValues: ['Success'],
    failureValues: ['Error', 'Stopped'],
    pollIntervalMs: 20,
    timeoutMs: 5000,
  }
  const io = { env: { HARBOR_PASSWORD: 'pw' }, signal: new AbortController().signal, onLine: () => {} }
  const result = await runExecutor(executor, { dryRun: true, deleteUntagged: false }, io)
  t.equal(result.failure, undefined)
  t.same(JSON.parse(seen[0]!.body), {
    schedule: { type: 'Manual' },
    parameters: { delete_untagged: false, dry_run: true },
  })
  t.equal(seen[0]!.authorization, `Basic ${Buffer.from('admin:pw').toString('base64')}`)
  t.equal(polls, 3, 'polled until the status was final')
  t.equal(result.report.eligibleBlobs, 7)
  t.equal(result.report.reportedFreedBytes, 34 * 1024 * 1024)

  outcome = 'Error'
  polls = 0
  const failed = await runExecutor(executor, { dryRun: false, deleteUntagged: true }, io)
  t.equal(failed.failure, 'the collector ended Error')
  const missing = await runExecutor(executor, { dryRun: false, deleteUntagged: false }, { ...io, env: {} })
  t.match(missing.failure, /HARBOR_PASSWORD is not set/)
})
