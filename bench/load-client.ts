import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { Pool } from 'undici'

/**
 * The load generator of bench:browse, on a thread of its own: in the server's thread, the clients'
 * own work (200 connections' requests, timers and parsing) would be counted against the server,
 * and more connections would look slower for the clients' sake. Real clients are elsewhere.
 */
export interface LoadSpec {
  url: string
  token: string
  paths: string[]
  connections: number
  ms: number
}

export interface LoadResult {
  requests: number
  ms: number
  p50: number
  p99: number
  timeouts: number
  errors: number
}

/** Runs `spec` on a worker thread and resolves with what it measured. */
export function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: spec })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the load thread exited with ${code}`))
    })
  })
}

/**
 * A closed loop: `connections` clients, each sending its next request when the last one answered,
 * for `ms`. A request without an answer within 10 s counts as a timeout.
 */
async function run({ url, token, paths, connections, ms }: LoadSpec): Promise<LoadResult> {
  const pool = new Pool(url, { connections, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const latencies: number[] = []
  let timeouts = 0
  let errors = 0
  const started = performance.now()
  const end = started + ms
  await Promise.all(
    Array.from({ length: connections }, async (_, client) => {
      for (let i = client; performance.now() < end; i++) {
        const t0 = performance.now()
        try {
          const res = await pool.request({
            method: 'GET',
            path: paths[i % paths.length]!,
            headers: { authorization: `Bearer ${token}` },
          })
          await res.body.dump()
          if (res.statusCode === 200) latencies.push(performance.now() - t0)
          else errors++
        } catch (err) {
          if ((err as { code?: string }).code?.includes('TIMEOUT')) timeouts++
          else errors++
        }
      }
    }),
  )
  const elapsed = performance.now() - started
  await pool.close()
  latencies.sort((a, b) => a - b)
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN
  return { requests: latencies.length, ms: elapsed, p50: at(0.5), p99: at(0.99), timeouts, errors }
}

if (!isMainThread) parentPort!.postMessage(await run(workerData as LoadSpec))
