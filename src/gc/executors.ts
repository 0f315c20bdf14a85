import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { childEnv, commandFailure, runCommand } from './command.js'
import type { CommandExecutor, GcExecutor, HttpExecutor } from './config-schema.js'
import { GcOutputParser, type GcReport } from './output.js'

/**
 * The executors that collect a registry's garbage: `command` (distribution's `registry
 * garbage-collect`, directly or through `docker exec` / `kubectl exec`), `http` (a registry's own
 * GC API, shaped for Harbor's /api/v2.0/system/gc/schedule) and `none` (the registry collects by
 * itself).
 */
export interface ExecutorOptions {
  dryRun: boolean
  deleteUntagged: boolean
}

export interface ExecutorIo {
  /** Regent's environment: only PATH and HOME go to commands, and named passwords are read here. */
  env: Record<string, string | undefined>
  signal: AbortSignal
  onLine(line: string): void
}

export interface ExecutorResult {
  /** Why it failed; undefined when it succeeded. */
  failure?: string
  report: GcReport
}

export async function runExecutor(
  executor: GcExecutor,
  options: ExecutorOptions,
  io: ExecutorIo,
): Promise<ExecutorResult> {
  const parser = new GcOutputParser()
  const onLine = (line: string) => {
    parser.line(line)
    io.onLine(line)
  }
  if (executor.kind === 'none') {
    onLine('executor none: the registry collects its garbage by itself; nothing to run')
    return { report: parser.report }
  }
  const failure =
    executor.kind === 'command'
      ? await runCommandExecutor(executor, options, { ...io, onLine })
      : await runHttpExecutor(executor, options, { ...io, onLine })
  return failure === undefined ? { report: parser.report } : { failure, report: parser.report }
}

async function runCommandExecutor(
  executor: CommandExecutor,
  options: ExecutorOptions,
  io: ExecutorIo,
): Promise<string | undefined> {
  const argv = [
    ...executor.argv,
    ...(options.dryRun ? executor.dryRunArgs : []),
    ...(options.deleteUntagged ? executor.deleteUntaggedArgs : []),
  ]
  io.onLine(`$ ${argv.join(' ')}`)
  const result = await runCommand(
    {
      argv,
      env: childEnv(io.env, executor.env),
      timeoutMs: executor.timeoutMs,
      ...(executor.cwd ? { cwd: executor.cwd } : {}),
    },
    { signal: io.signal, onLine: io.onLine },
  )
  return commandFailure(result, executor.timeoutMs)
}

/**
 * Harbor: `POST /api/v2.0/system/gc/schedule` with `{"schedule":{"type":"Manual"},"parameters":
 * {"delete_untagged":…,"dry_run":…}}` answers 201 with `Location: /api/v2.0/system/gc/<id>`;
 * `GET` of that answers `job_status` (`Pending`, `Running`, `Success`, `Error`, `Stopped`), and
 * `GET …/<id>/log` the job log, which carries the counts the parser reads.
 */
async function runHttpExecutor(
  executor: HttpExecutor,
  options: ExecutorOptions,
  io: ExecutorIo,
): Promise<string | undefined> {
  const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/json' }
  if (executor.auth) {
    const password = io.env[executor.auth.passwordEnv]
    if (password === undefined) return `the password variable ${executor.auth.passwordEnv} is not set`
    headers.authorization = `Basic ${Buffer.from(`${executor.auth.username}:${password}`).toString('base64')}`
  }
  const deadline = Date.now() + executor.timeoutMs
  const call = async (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) => {
    const res = await request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: io.signal,
      headersTimeout: 30_000,
      bodyTimeout: 60_000,
    })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, text }
  }

  io.onLine(`${executor.method} ${executor.url}`)
  const triggered = await call(executor.method, executor.url, {
    schedule: { type: 'Manual' },
    parameters: { delete_untagged: options.deleteUntagged, dry_run: options.dryRun },
  })
  if (triggered.status < 200 || triggered.status >= 300) {
    return `trigger answered ${triggered.status}: ${triggered.text.slice(0, 500)}`
  }
  const location = [triggered.headers.location].flat()[0]
  const id = idOf(location, triggered.text)
  const pollUrl = executor.pollUrl
    ? executor.pollUrl.replaceAll('{id}', encodeURIComponent(id ?? ''))
    : location
      ? new URL(location, executor.url).toString()
      : undefined
  if (!pollUrl) return 'the trigger answered neither a Location nor an id, and no pollUrl is configured'
  io.onLine(`triggered${id ? ` (id ${id})` : ''}; polling ${pollUrl}`)

  let status: string | undefined
  for (;;) {
    const polled = await call('GET', pollUrl)
    if (polled.status >= 200 && polled.status < 300) {
      status = statusOf(polled.text, executor.statusField)
      if (
        status !== undefined &&
        (executor.successValues.includes(status) || executor.failureValues.includes(status))
      )
        break
    } else {
      io.onLine(`poll answered ${polled.status}`)
    }
    if (Date.now() > deadline)
      return `timed out after ${executor.timeoutMs} ms (last status ${status ?? 'unknown'})`
    await sleep(executor.pollIntervalMs, undefined, { signal: io.signal })
  }
  io.onLine(`status ${status}`)
  if (executor.logUrl) {
    const log = await call('GET', executor.logUrl.replaceAll('{id}', encodeURIComponent(id ?? '')))
    if (log.status >= 200 && log.status < 300) for (const line of log.text.split('\n')) io.onLine(line)
  }
  return executor.successValues.includes(status!) ? undefined : `the collector ended ${status}`
}

function idOf(location: string | undefined, body: string): string | undefined {
  if (location) {
    const last = location.split('?')[0]!.split('/').filter(Boolean).pop()
    if (last) return decodeURIComponent(last)
  }
  try {
    const parsed = JSON.parse(body) as { id?: unknown }
    if (typeof parsed.id === 'string' || typeof parsed.id === 'number') return String(parsed.id)
  } catch {}
  return undefined
}

function statusOf(body: string, field: string): string | undefined {
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[field]
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}
