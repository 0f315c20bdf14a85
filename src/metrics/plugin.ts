import fp from 'fastify-plugin'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry
  }
}

/**
 * Prometheus metrics on GET /metrics. Each app owns its registry (tests build many apps in one
 * process). Requests are labelled by route pattern, never by raw URL, so that a scan of random
 * paths cannot blow up the number of series.
 */
export default fp(
  async (app) => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry, prefix: 'regent_' })

    const requests = new Counter({
      name: 'regent_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    })
    const latency = new Histogram({
      name: 'regent_http_request_duration_seconds',
      help: 'HTTP request latency, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    })
    const pool = new Gauge({
      name: 'regent_db_pool_connections',
      help: 'Postgres pool connections by state (total, idle, waiting requests)',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        this.set({ state: 'total' }, app.db.totalCount)
        this.set({ state: 'idle' }, app.db.idleCount)
        this.set({ state: 'waiting' }, app.db.waitingCount)
      },
    })
    void pool

    app.decorate('metrics', registry)

    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched'
      const labels = { method: request.method, route, status: String(reply.statusCode) }
      requests.inc(labels)
      latency.observe(labels, reply.elapsedTime / 1000)
    })

    app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
      reply.header('content-type', registry.contentType)
      return registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['db'] },
)
