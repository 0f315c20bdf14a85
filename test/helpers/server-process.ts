import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../src/db/embedded.js'
import { type RunningChild, runNode } from './child.js'

/**
 * The real process (`node dist/server.js`, what `npm start` and the image run), for what only
 * exists there: signals, the embedded database's lifecycle, exit codes, surviving its database.
 */
const serverJs = new URL('../../dist/server.js', import.meta.url).pathname

export interface RunningServer extends RunningChild {
  port: number
}

/** Starts the server on a free port with `env` over this process's (without its DATABASE_URL). */
export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort()
  const { DATABASE_URL: _ignored, ...base } = process.env
  const running = runNode([serverJs], {
    env: { ...base, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
  })
  return { ...running, port }
}

/** Waits until /readyz answers 200; throws with the server's output if it exits or takes too long. */
export async function waitReady(server: RunningServer, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`server exited early:\n${server.output()}`)
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`)
      if (res.status === 200) return
    } catch {}
    await sleep(200)
  }
  throw new Error(`server not ready in time:\n${server.output().slice(-4000)}`)
}
