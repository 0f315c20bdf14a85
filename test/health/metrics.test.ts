import t from 'tap'
import { build } from '../helper.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A strict reader of the Prometheus text format: any line it cannot read fails the test. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]?Inf)(?: \d+)?$/.exec(
      line,
    )
    if (!m) throw new Error(`not Prometheus text: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

t.test('/metrics parses as Prometheus text and counts the requests just made', async (t) => {
  const app = await build(t)
  for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: '/healthz' })
  await app.inject({ method: 'GET', url: '/no/such/route' })

  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const samples = parsePrometheus(res.body)

  const count = (route: string, status: string) =>
    samples.find(
      (s) =>
        s.name === 'regent_http_requests_total' &&
        s.labels.route === route &&
        s.labels.status === status &&
        s.labels.method === 'GET',
    )?.value
  t.equal(count('/healthz', '200'), 3)
  t.equal(count('unmatched', '404'), 1, 'unknown paths share one series')
  t.ok(
    samples.some(
      (s) => s.name === 'regent_http_request_duration_seconds_bucket' && s.labels.route === '/healthz',
    ),
  )
  t.ok(samples.some((s) => s.name === 'regent_db_pool_connections' && s.labels.state === 'total'))
  t.ok(
    samples.some((s) => s.name === 'regent_process_cpu_user_seconds_total'),
    'process metrics are there',
  )
})

t.test('/healthz and /readyz answer 200 on a migrated database', async (t) => {
  const app = await build(t)
  t.equal((await app.inject('/healthz')).statusCode, 200)
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.equal(ready.json().status, 'ready')
  t.equal(ready.json().checks.database.ok, true)
})

t.test('/readyz answers 503 when the schema is behind this build', async (t) => {
  const app = await build(t)
  await app.db.query('DELETE FROM schemaversion WHERE version = (SELECT max(version) FROM schemaversion)')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().status, 'unready')
  t.match(ready.json().checks.database.detail, /this build needs/)
})
