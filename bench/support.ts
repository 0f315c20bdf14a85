import diagnostics from 'node:diagnostics_channel'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import type { Pool } from 'undici'
import { type Config, loadConfig } from '../src/config.js'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { migrate } from '../src/db/migrate.js'
import { MANIFEST_ACCEPT } from '../src/oci/index.js'
import { mapLimit } from '../src/registries/map-limit.js'
import { procStatFields } from '../test/helpers/child.js'
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js'

/**
 * What every benchmark needs: a migrated database (embedded, or DATABASE_URL's server) and timing.
 * Benchmarks print ratios measured in one run against one registry, so machine speed cancels out.
 */
export async function benchDatabase(): Promise<{
  url: string
  stop: () => Promise<void>
  /** CPU time the embedded server's processes have used so far; undefined on DATABASE_URL's. */
  cpuMs?: () => number
}> {
  const quiet = { info() {}, warn() {}, debug() {} }
  let adminUrl = process.env.DATABASE_URL
  let stopServer = async () => {}
  let dataDir: string | undefined
  let cpuMs: (() => number) | undefined
  if (!adminUrl) {
    dataDir = mkdtempSync(path.join(tmpdir(), 'regent-bench-pg-'))
    const embedded = await startEmbeddedPostgres({ dataDir, port: 0, log: quiet })
    adminUrl = embedded.url
    stopServer = () => embedded.stop()
    cpuMs = () => (embedded.pid ? processTreeCpuMs(embedded.pid) : 0)
  }
  const name = `regent_bench_${process.pid}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const pool = new pg.Pool({ connectionString: url.toString(), max: 1 })
  await migrate(pool)
  await pool.end()
  return {
    url: url.toString(),
    ...(cpuMs ? { cpuMs } : {}),
    stop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
      await stopServer()
      if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** The config of a benchmarked app: its database, quiet, no worker, a known JWT secret, plus `extra`. */
export function benchConfig(databaseUrl: string, extra: Record<string, unknown>): Config {
  return loadConfig(
    {},
    {
      databaseUrl,
      logLevel: 'silent',
      worker: false,
      auth: { jwtSecret: 'test-secret-0123456789abcdef0123456789abcdef' },
      ...extra,
    },
  )
}

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now()
  const result = await work()
  return { ms: performance.now() - started, result }
}

export function log(line: string): void {
  process.stdout.write(`${line}\n`)
}

/** Runs a benchmark with a migrated database and a fresh registry, stopping both whatever happens. */
export function runBench(
  body: (ctx: { db: { url: string; cpuMs?: () => number }; registry: TestRegistry }) => Promise<void>,
): void {
  const run = async () => {
    const db = await benchDatabase()
    const registry = await startRegistry()
    try {
      await body({ db, registry })
    } finally {
      await registry.stop()
      await db.stop()
    }
  }
  run().catch((err) => {
    process.stderr.write(`${err.stack}\n`)
    process.exitCode = 1
  })
}

/**
 * The registry's own floor for "what tags are there, and what do they point at": per repository
 * one tags/list, then a HEAD per tag with `concurrency` in flight; `perTag` adds what else a
 * benchmark fetches per tag. Returns how many tags it saw.
 */
export async function headEveryTag(
  direct: Pool,
  repositories: string[],
  concurrency: number,
  perTag: (repository: string, digest: string) => Promise<void> = async () => {},
): Promise<number> {
  let tags = 0
  for (const repository of repositories) {
    const list = await direct.request({ method: 'GET', path: `/v2/${repository}/tags/list?n=1000` })
    const { tags: names } = (await list.body.json()) as { tags: string[] }
    await mapLimit(names, concurrency, async (tag) => {
      const head = await direct.request({
        method: 'HEAD',
        path: `/v2/${repository}/manifests/${tag}`,
        headers: { accept: MANIFEST_ACCEPT },
      })
      await head.body.dump()
      await perTag(repository, head.headers['docker-content-digest'] as string)
      tags++
    })
  }
  return tags
}

/**
 * Registry calls to `registry`, from undici's diagnostics channel: how many started, how many are
 * in flight and the most at once, and `slotMs`, the integral of calls in flight over time (divided
 * by a phase's length, it is how many of the registry's slots the phase kept busy on average).
 */
export function countRegistryCalls(registry: { url: string }) {
  const origin = new URL(registry.url).origin
  const calls = { total: 0, inFlight: 0, maxInFlight: 0, slotMs: 0 }
  let changedAt = performance.now()
  const ours = (message: unknown) =>
    String((message as { request: { origin: string | URL } }).request.origin).replace(/\/$/, '') === origin
  const change = (by: number) => {
    const now = performance.now()
    calls.slotMs += calls.inFlight * (now - changedAt)
    changedAt = now
    calls.inFlight += by
  }
  diagnostics.subscribe('undici:request:create', (message) => {
    if (!ours(message)) return
    calls.total++
    change(1)
    calls.maxInFlight = Math.max(calls.maxInFlight, calls.inFlight)
  })
  for (const channel of ['undici:request:trailers', 'undici:request:error']) {
    diagnostics.subscribe(channel, (message) => {
      if (ours(message)) change(-1)
    })
  }
  return calls
}

/** Clock ticks of /proc (USER_HZ, 100 on Linux) in milliseconds. */
const TICK_MS = 10

/**
 * CPU time (user + system) in `fields`, in ms. Counting from the state (field 3 in man 5 proc):
 * utime and stime are fields 14 and 15; with `reapedChildren`, also cutime and cstime (16, 17),
 * what children that have exited used.
 */
function cpuMsOf(fields: string[], reapedChildren = false): number {
  const ticks = fields.slice(11, reapedChildren ? 15 : 13).reduce((sum, value) => sum + Number(value), 0)
  return ticks * TICK_MS
}

/** CPU time (user + system) `pid` has used so far, in ms; 0 once it is gone. */
export function processCpuMs(pid: number): number {
  const fields = procStatFields(pid)
  return fields ? cpuMsOf(fields) : 0
}

/**
 * CPU time of `pid` and its children, those that exited included: for PostgreSQL, whose backends
 * come and go with the connections.
 */
function processTreeCpuMs(pid: number): number {
  const own = procStatFields(pid)
  if (!own) return 0
  let total = cpuMsOf(own, true)
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const fields = procStatFields(Number(entry))
    // ppid is field 4.
    if (fields && Number(fields[1]) === pid) total += cpuMsOf(fields)
  }
  return total
}
