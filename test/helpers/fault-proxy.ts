import http from 'node:http'
import type { Socket } from 'node:net'

/**
 * An HTTP proxy in front of a real registry, for the faults a real registry cannot be made to
 * produce: a delay, a hang, a reset in the middle of a body, 429 with Retry-After, 5xx bursts and
 * altered bodies. It counts every request it receives by method and path.
 *
 * The Host header is passed through unchanged, so distribution builds upload `Location` URLs that
 * point back at the proxy and a client stays behind it for the whole exchange.
 */

export type Fault =
  | { kind: 'delay'; ms: number }
  /** Forward at once (the registry acts on it), then hold the answer back for `ms`. */
  | { kind: 'delay-response'; ms: number }
  /** Never answer: the client's headers timeout must fire. */
  | { kind: 'hang' }
  /** Send the real headers and part of the real body, then destroy the socket. */
  | { kind: 'reset-mid-body'; afterBytes?: number }
  /** Answer this instead of forwarding (429 + Retry-After, 503, a 401 naming some realm, …). */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, then change the body (default: append a space, which keeps JSON valid). */
  | { kind: 'alter-body'; alter?: (body: Buffer) => Buffer }

export interface FaultRule {
  fault: Fault
  method?: string
  /** A path prefix, or a RegExp tested against the path and query. */
  path?: string | RegExp
  /** How many matching requests get the fault; unlimited when absent. */
  times?: number
}

export interface ProxiedRequest {
  method: string
  /** Path and query as received. */
  url: string
  headers: http.IncomingHttpHeaders
  at: number
  fault?: Fault['kind']
}

export interface FaultProxy {
  url: string
  port: number
  requests: ProxiedRequest[]
  addFault(rule: FaultRule): void
  clearFaults(): void
  /** Requests seen, optionally only one method and/or a path prefix or RegExp. */
  count(method?: string, path?: string | RegExp): number
  resetCounts(): void
  stop(): Promise<void>
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target)
  const rules: FaultRule[] = []
  const requests: ProxiedRequest[] = []
  const sockets = new Set<Socket>()
  // Held-back answers are timers; stop() clears them, so that a long delay does not keep the test
  // process alive after its test has finished.
  const timers = new Set<NodeJS.Timeout>()
  const later: Later = (fn, ms) => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      fn()
    }, ms)
    timers.add(timer)
  }

  const server = http.createServer((req, res) => {
    const record: ProxiedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      at: Date.now(),
    }
    requests.push(record)
    const fault = takeFault(rules, record)
    if (fault) record.fault = fault.kind
    handle(fault, req, res, upstream, later)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    addFault: (rule) => {
      rules.push({ ...rule })
    },
    clearFaults: () => {
      rules.length = 0
    },
    count: (method, path) => requests.filter((r) => matches(r, method, path)).length,
    resetCounts: () => {
      requests.length = 0
    },
    stop: async () => {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function matches(r: { method: string; url: string }, method?: string, path?: string | RegExp): boolean {
  if (method !== undefined && r.method !== method.toUpperCase()) return false
  if (path === undefined) return true
  return typeof path === 'string' ? r.url.startsWith(path) : path.test(r.url)
}

function takeFault(rules: FaultRule[], r: ProxiedRequest): Fault | undefined {
  const rule = rules.find(
    (candidate) => candidate.times !== 0 && matches(r, candidate.method, candidate.path),
  )
  if (!rule) return undefined
  if (rule.times !== undefined) rule.times--
  return rule.fault
}

type Later = (fn: () => void, ms: number) => void

function handle(
  fault: Fault | undefined,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: URL,
  later: Later,
): void {
  switch (fault?.kind) {
    case undefined:
      forward(req, res, upstream, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      })
      return
    case 'delay':
      later(() => handle(undefined, req, res, upstream, later), fault.ms)
      return
    case 'delay-response':
      forward(req, res, upstream, (up) =>
        collect(up, (body) =>
          later(() => {
            res.writeHead(up.statusCode ?? 502, up.headers)
            res.end(body)
          }, fault.ms),
        ),
      )
      return
    case 'hang':
      req.resume() // read the request so the client is left waiting for headers only
      return
    case 'status':
      req.resume()
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers })
      res.end(fault.body ?? `{"errors":[{"code":"UNKNOWN","message":"injected ${fault.status}"}]}`)
      return
    case 'reset-mid-body':
      forward(req, res, upstream, (up) =>
        collect(up, (body) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          res.write(body.subarray(0, fault.afterBytes ?? Math.floor(body.length / 2)))
          // Let the partial body leave before the reset.
          later(() => res.socket?.destroy(), 20)
        }),
      )
      return
    case 'alter-body':
      forward(req, res, upstream, (up) =>
        collect(up, (body) => {
          const altered = (fault.alter ?? ((b: Buffer) => Buffer.concat([b, Buffer.from(' ')])))(body)
          const headers = { ...up.headers, 'content-length': String(altered.length) }
          res.writeHead(up.statusCode ?? 502, headers)
          res.end(altered)
        }),
      )
      return
  }
}

function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: URL,
  onResponse: (up: http.IncomingMessage) => void,
): void {
  const out = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
    onResponse,
  )
  out.on('error', () => res.socket?.destroy())
  req.pipe(out)
}

function collect(stream: http.IncomingMessage, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  stream.on('end', () => done(Buffer.concat(chunks)))
}
