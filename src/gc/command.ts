import { spawn } from 'node:child_process'

/**
 * Runs a configured command: an argv array, never through a shell (`shell: false` is spawn's
 * default and is spelled out), with a minimal environment, a working folder and a timeout. Output
 * (stdout and stderr interleaved as they arrive) is handed over line by line and its tail kept.
 */
export interface CommandSpec {
  argv: string[]
  /** The child's whole environment (see childEnv). */
  env: Record<string, string>
  cwd?: string
  timeoutMs: number
}

export interface CommandResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  aborted: boolean
  /** The last TAIL_BYTES of the output. */
  tail: string
  /** Set when the program could not be started (ENOENT, EACCES…). */
  spawnError?: string
  durationMs: number
}

const TAIL_BYTES = 64 * 1024
/** A child that ignores SIGTERM this long is killed. */
const KILL_GRACE_MS = 5000

export async function runCommand(
  spec: CommandSpec,
  options: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<CommandResult> {
  const started = Date.now()
  const [program, ...args] = spec.argv
  if (!program) throw new Error('empty argv')
  let tail = ''
  const partial = { stdout: '', stderr: '' }
  const take = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
    const text = chunk.toString('utf8')
    tail = (tail + text).slice(-TAIL_BYTES)
    const lines = (partial[stream] + text).split('\n')
    partial[stream] = lines.pop() ?? ''
    for (const line of lines) options.onLine?.(line)
  }

  return new Promise<CommandResult>((resolve) => {
    let timedOut = false
    let aborted = false
    let killTimer: NodeJS.Timeout | undefined
    const child = spawn(program, args, {
      cwd: spec.cwd,
      env: spec.env,
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const stop = () => {
      child.kill('SIGTERM')
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
      killTimer.unref()
    }
    const timer = setTimeout(() => {
      timedOut = true
      stop()
    }, spec.timeoutMs)
    const onAbort = () => {
      aborted = true
      stop()
    }
    if (options.signal?.aborted) onAbort()
    else options.signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (chunk: Buffer) => take('stdout', chunk))
    child.stderr.on('data', (chunk: Buffer) => take('stderr', chunk))
    let spawnError: string | undefined
    child.once('error', (err) => {
      spawnError = err.message
    })
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer)
      clearTimeout(killTimer)
      options.signal?.removeEventListener('abort', onAbort)
      for (const rest of [partial.stdout, partial.stderr]) if (rest) options.onLine?.(rest)
      resolve({
        exitCode,
        signal,
        timedOut,
        aborted,
        tail: spawnError ? `${tail}${spawnError}\n` : tail,
        durationMs: Date.now() - started,
        ...(spawnError ? { spawnError } : {}),
      })
    })
  })
}

/** Why a finished command counts as failed, or undefined when it exited 0. */
export function commandFailure(result: CommandResult, timeoutMs: number): string | undefined {
  if (result.spawnError) return `could not start: ${result.spawnError}`
  if (result.timedOut) return `timed out after ${timeoutMs} ms`
  if (result.aborted) return 'aborted'
  if (result.exitCode !== 0) {
    return result.signal ? `killed by ${result.signal}` : `exited with status ${result.exitCode}`
  }
  return undefined
}

/**
 * A command's environment: PATH and HOME from Regent's own (so `docker`, `kubectl` and their
 * config are found) plus what the config sets. Nothing else is passed on: DATABASE_URL, the JWT
 * secret and registry passwords never reach a hook.
 */
export function childEnv(
  base: Record<string, string | undefined>,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ']) {
    const value = base[name]
    if (value !== undefined) env[name] = value
  }
  return { ...env, ...extra }
}
