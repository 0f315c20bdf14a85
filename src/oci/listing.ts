import type { Cancellable } from './abort.js'
import { scopes } from './auth.js'
import { ociErrors } from './errors.js'
import { assertRepository } from './reference.js'
import type { Headers, Transport } from './transport.js'

const MAX_LIST_BYTES = 32 * 1024 * 1024

/**
 * Repository names, page by page (`n`, then the `Link: <…>; rel="next"` the registry returns),
 * holding one page at a time. `_catalog` is a distribution extension, not OCI.
 */
export async function* catalog(
  transport: Transport,
  opts: { pageSize?: number; last?: string } & Cancellable,
): AsyncGenerator<string, void, undefined> {
  const params = new URLSearchParams({ n: String(pageSize(opts.pageSize)) })
  if (opts.last !== undefined) params.set('last', assertRepository(opts.last))
  yield* pages(transport, `/v2/_catalog?${params}`, scopes.catalog, 'repositories', opts.signal)
}

/** Tags of a repository, page by page. distribution 2.8 ignores `n` here and sends one page. */
export async function* tags(
  transport: Transport,
  repository: string,
  opts: { pageSize?: number } & Cancellable,
): AsyncGenerator<string, void, undefined> {
  assertRepository(repository)
  const params = new URLSearchParams({ n: String(pageSize(opts.pageSize)) })
  yield* pages(
    transport,
    `/v2/${repository}/tags/list?${params}`,
    scopes.pull(repository),
    'tags',
    opts.signal,
  )
}

async function* pages(
  transport: Transport,
  first: string,
  scope: string,
  field: 'repositories' | 'tags',
  signal: AbortSignal | undefined,
): AsyncGenerator<string, void, undefined> {
  let path: string | undefined = transport.path(first)
  while (path !== undefined) {
    // A caller that gave up while reading the previous page gets no further page fetched.
    signal?.throwIfAborted()
    const reply = await transport.expectOk({
      method: 'GET',
      path,
      scope,
      headers: { accept: 'application/json' },
      maxBytes: MAX_LIST_BYTES,
      signal,
    })
    const names = listField(reply.body, field, transport.registry)
    path = nextPage(transport, reply.headers, path)
    yield* names
  }
}

/** Follows RFC 5988 `Link: <url>; rel="next"`, only within the registry's own origin and API. */
function nextPage(transport: Transport, headers: Headers, current: string): string | undefined {
  const target = nextLink(headers.link)
  if (target === undefined) return undefined
  const origin = transport.url.origin
  const url = new URL(target, new URL(current, origin))
  if (url.origin !== origin || !transport.isApiPath(url.pathname)) {
    throw new ociErrors.REGISTRY_ERROR(
      transport.registry,
      `GET ${current}`,
      'pagination link leaves the registry',
    )
  }
  const next = `${url.pathname}${url.search}`
  // A registry repeating the same page link would loop forever.
  return next === current ? undefined : next
}

/** The `rel="next"` target of RFC 5988 Link headers (several links may share one header). */
export function nextLink(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(', ') : value
  if (!joined) return undefined
  for (const match of joined.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(match[2] ?? '')
    const value = rel?.[1] ?? rel?.[2]
    if (value?.toLowerCase().split(/\s+/).includes('next')) return match[1]
  }
  return undefined
}

export function listField(body: Buffer, field: 'repositories' | 'tags', registry: string): string[] {
  let doc: unknown
  try {
    doc = JSON.parse(body.toString('utf8'))
  } catch {
    throw new ociErrors.REGISTRY_ERROR(registry, `list of ${field}`, 'body is not JSON')
  }
  const list = (doc as Record<string, unknown> | null)?.[field]
  if (list === null || list === undefined) return [] // distribution answers `"tags": null` for no tags
  if (!Array.isArray(list)) {
    throw new ociErrors.REGISTRY_ERROR(registry, `list of ${field}`, `${field} is not a list`)
  }
  return list.filter((v): v is string => typeof v === 'string')
}

function pageSize(n: number | undefined): number {
  const size = n ?? 100
  // distribution refuses n above its catalog.maxentries (1000) with PAGINATION_NUMBER_INVALID.
  if (!Number.isSafeInteger(size) || size < 1 || size > 1000) {
    throw new ociErrors.INVALID_REFERENCE('page size', `${size} (must be 1 to 1000)`)
  }
  return size
}
