import { type ChildProcess, spawn } from 'node:child_process'

/** A Node program run as a child process, its stdout and stderr collected together. */
export interface RunningChild {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export function runNode(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): RunningChild {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
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
