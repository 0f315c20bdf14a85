import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { within } from './wait.js'

/** A Node program run as a child process, its stdout and stderr collected together. */
export interface RunningChild {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Linux's /proc/<pid>/stat fields after the command name (which may hold spaces), so index 0 is the
 * state (field 3 in man 5 proc); undefined once the process is gone.
 */
export function procStatFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  } catch {
    return undefined
  }
}

const SETPRIV = '/usr/bin/setpriv'

/**
 * Spawns a process that gets SIGTERM when this one dies. A test file that tap times out is killed
 * without running its cleanup; the servers and registries it started would otherwise outlive it and
 * hold ports, CPU and data folders for the rest of the suite. util-linux's `setpriv` sets the
 * signal and then execs the command (same pid, same arguments); where it is missing the command
 * runs as before.
 */
export function spawnTiedToParent(command: string, args: string[], options: SpawnOptions): ChildProcess {
  if (process.platform !== 'linux' || !existsSync(SETPRIV)) return spawn(command, args, options)
  return spawn(SETPRIV, ['--pdeathsig', 'SIGTERM', '--', command, ...args], options)
}

/**
 * Stops a child: SIGTERM, so it can stop what it started in turn (a server's embedded postmaster),
 * then SIGKILL if it has not exited within `graceMs`. Resolves once it is gone.
 */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  // within(): a plain sleep would hold the test process open for the whole grace after the exit.
  if (
    !(await within(
      exited.then(() => true),
      graceMs,
    ))
  ) {
    child.kill('SIGKILL')
    await exited
  }
}

export function runNode(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): RunningChild {
  const child = spawnTiedToParent(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  let out = ''
  child.stdout!.on('data', (d) => {
    out += d
  })
  child.stderr!.on('data', (d) => {
    out += d
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, output: () => out, exited }
}

const root = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The compiled JavaScript of a test fixture (a `.ts` file under test/<folder>/fixtures/), which the
 * test runner builds into .test-dist/ with tsconfig.fixtures.json. Spawned processes run it with
 * plain node: no TypeScript loader compiling src/ at every start.
 */
export function compiledFixture(source: URL): string {
  const relative = path.relative(root, fileURLToPath(source))
  const compiled = path.join(root, '.test-dist', relative.replace(/\.ts$/, '.js'))
  if (!existsSync(compiled)) {
    throw new Error(`${relative} is not compiled: run the tests with \`npm test\`, which builds the fixtures`)
  }
  return compiled
}
