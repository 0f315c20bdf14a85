import http from 'node:http'

/**
 * An HTTP server that records every request it receives and answers what the test tells it to:
 * the place credentials must never reach, or a fake realm / fake registry for protocol edge cases.
 */

export interface CapturedRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
  at: number
}

export interface CaptureResponse {
  status?: number
  headers?: Record<string, string | string[]>
  body?: string | Buffer
}

export type Responder = CaptureResponse | ((req: CapturedRequest) => CaptureResponse)

export interface CaptureServer {
  url: string
  port: number
  requests: CapturedRequest[]
  /** Requests that carried an Authorization header. */
  withAuthorization(): CapturedRequest[]
  respond(responder: Responder): void
  stop(): Promise<void>
}

export async function startCaptureServer(responder: Responder = {}): Promise<CaptureServer> {
  let current = responder
  const requests: CapturedRequest[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const captured: CapturedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      }
      requests.push(captured)
      const answer = typeof current === 'function' ? current(captured) : current
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
      res.end(answer.body ?? '{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    withAuthorization: () => requests.filter((r) => r.headers.authorization !== undefined),
    respond: (next) => {
      current = next
    },
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export function redirectTo(location: string, status = 302): CaptureResponse {
  return { status, headers: { location }, body: '' }
}
