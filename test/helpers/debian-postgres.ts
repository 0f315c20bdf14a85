import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '../../src/db/embedded.js'

/**
 * A PostgreSQL cluster of Debian's postgresql-15 package (what CI installs) in a temp folder, on a
 * free loopback port, with trust auth: for tests that need a server shared by several processes.
 * As root the server runs as the `postgres` user (initdb refuses root), as `.ci/run` does it.
 */

export const DEBIAN_PG_BIN = '/usr/lib/postgresql/15/bin'
const execFileAsync = promisify(execFile)

export interface DebianPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  adminUrl: string
  /** The same server, another database. */
  urlFor(database: string): string
  stop(): Promise<void>
}

export function debianPostgresInstalled(): boolean {
  return existsSync(path.join(DEBIAN_PG_BIN, 'initdb'))
}

export async function startDebianPostgres(): Promise<DebianPostgres> {
  const dir = await mkdtemp(path.join(tmpdir(), 'regent-pg15-'))
  const asRoot = process.getuid?.() === 0
  const run = (program: string, args: string[]) =>
    asRoot
      ? execFileAsync('runuser', ['-u', 'postgres', '--', path.join(DEBIAN_PG_BIN, program), ...args])
      : execFileAsync(path.join(DEBIAN_PG_BIN, program), args)
  if (asRoot) {
    await chmod(dir, 0o755)
    await chown(dir, ...(await postgresIds()))
  }
  const data = path.join(dir, 'data')
  const port = await freePort()
  await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'])
  await run('pg_ctl', [
    '-D',
    data,
    '-l',
    path.join(dir, 'log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`,
    'start',
  ])
  const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    stop: async () => {
      await run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function postgresIds(): Promise<[number, number]> {
  const { stdout: uid } = await execFileAsync('id', ['-u', 'postgres'])
  const { stdout: gid } = await execFileAsync('id', ['-g', 'postgres'])
  return [Number(uid), Number(gid)]
}
