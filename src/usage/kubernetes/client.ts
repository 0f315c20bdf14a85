import { Pool } from 'undici'
import type { KubernetesConnection } from './connection.js'

/**
 * A read-only Kubernetes API client for list calls, on one undici Pool per sync. It pages with
 * `limit` and `continue` (API concepts, "Retrieving large results sets in chunks"): the server
 * answers each page with `metadata.continue` until the list is complete, all pages from one
 * consistent snapshot. A continue token the server no longer accepts (etcd compacted its revision,
 * typically after ~5 minutes) is answered 410 Gone with a Status of reason `Expired`; the list then
 * starts over from the first page, and what earlier pages gave is discarded, so a list is never a
 * mix of two snapshots.
 *
 * Why not @kubernetes/client-node: its current major needs undici 8, which needs Node 22, and it
 * brings its own fetch stack, WebSocket, tar and proxy libraries for what here is five GET paths.
 */

export class KubernetesApiError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | null,
    readonly reason?: string,
  ) {
    super(message)
    this.name = 'KubernetesApiError'
  }
}

interface ListBody {
  kind?: string
  metadata?: { continue?: string; resourceVersion?: string }
  items?: unknown[]
}

interface StatusBody {
  kind?: string
  message?: string
  reason?: string
  code?: number
}

/** A list is restarted at most this often after expired continue tokens before the sync fails. */
const MAX_RESTARTS = 3

export interface ListStats {
  pages: number
  restarts: number
}

export class KubernetesClient {
  private readonly pool: Pool
  private readonly prefix: string
  private readonly stats: ListStats = { pages: 0, restarts: 0 }

  constructor(
    private readonly connection: KubernetesConnection,
    private readonly options: { timeoutMs: number; pageSize: number; signal?: AbortSignal },
  ) {
    this.prefix = connection.server.pathname.replace(/\/+$/, '')
    this.pool = new Pool(connection.server.origin, {
      connections: 2,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: {
        timeout: options.timeoutMs,
        ...(connection.ca ? { ca: connection.ca } : {}),
        ...(connection.cert ? { cert: connection.cert } : {}),
        ...(connection.key ? { key: connection.key } : {}),
        ...(connection.tlsServerName ? { servername: connection.tlsServerName } : {}),
        rejectUnauthorized: !connection.insecureSkipTlsVerify,
      },
    })
  }

  get listStats(): ListStats {
    return { ...this.stats }
  }

  /**
   * Every item of a list (`/api/v1/pods`, `/apis/apps/v1/namespaces/x/deployments`…), handed page
   * by page to `take`, whose results are kept. On an expired continue token what `take` returned
   * for earlier pages is dropped and the list starts again.
   */
  async list<T>(listPath: string, take: (item: unknown) => T[]): Promise<T[]> {
    for (let attempt = 0; ; attempt++) {
      const out: T[] = []
      let token: string | undefined
      try {
        do {
          const page = await this.page(listPath, token)
          for (const item of page.items ?? []) for (const taken of take(item)) out.push(taken)
          token = page.metadata?.continue || undefined
        } while (token)
        return out
      } catch (err) {
        const expired = err instanceof KubernetesApiError && err.statusCode === 410 && token !== undefined
        if (!expired || attempt >= MAX_RESTARTS) throw err
        this.stats.restarts++
      }
    }
  }

  private async page(listPath: string, token: string | undefined): Promise<ListBody> {
    const query = new URLSearchParams({ limit: String(this.options.pageSize) })
    if (token) query.set('continue', token)
    const res = await this.pool
      .request({
        method: 'GET',
        path: `${this.prefix}${listPath}?${query}`,
        headers: {
          accept: 'application/json',
          'user-agent': 'regent/usage',
          ...(this.connection.authorization ? { authorization: this.connection.authorization } : {}),
        },
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      })
      .catch((err: Error) => {
        throw new KubernetesApiError(`GET ${listPath}: ${err.message}`, null)
      })
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '')
      let status: StatusBody = {}
      try {
        status = JSON.parse(text) as StatusBody
      } catch {
        // Not a Status object (a proxy's page): the status code says enough.
      }
      const hint =
        res.statusCode === 401
          ? ' (the credentials were refused)'
          : res.statusCode === 403
            ? ' (RBAC: the ClusterRole in deploy/kubernetes/rbac/usage-clusterrole.yaml grants what Regent reads)'
            : ''
      throw new KubernetesApiError(
        `GET ${listPath}: ${res.statusCode}${status.reason ? ` ${status.reason}` : ''}${status.message ? `: ${status.message.slice(0, 300)}` : ''}${hint}`,
        res.statusCode,
        status.reason,
      )
    }
    this.stats.pages++
    const body = (await res.body.json()) as ListBody
    if (!body || typeof body !== 'object' || !Array.isArray(body.items))
      throw new KubernetesApiError(`GET ${listPath}: the answer is not a list`, res.statusCode)
    return body
  }

  async close(): Promise<void> {
    await this.pool.close()
  }
}
