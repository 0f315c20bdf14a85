import type { Cancellable } from './abort.js'
import { scopes } from './auth.js'
import { ociErrors } from './errors.js'
import type { PushResult } from './manifests.js'
import { assertDigest, assertRepository, digestAlgorithm, digestOf } from './reference.js'
import { contentLength, type Headers, header, type Transport } from './transport.js'

const DEFAULT_BLOB_BYTES = 16 * 1024 * 1024

export interface BlobHead {
  digest: string
  size: number
}

/** undefined when the registry answers 404. */
export async function headBlob(
  transport: Transport,
  repository: string,
  digest: string,
): Promise<BlobHead | undefined> {
  assertRepository(repository)
  assertDigest(digest)
  const path = transport.path(`/v2/${repository}/blobs/${digest}`)
  const reply = await transport.exchange({
    method: 'HEAD',
    path,
    scope: scopes.pull(repository),
    followRedirect: true,
  })
  if (reply.classification.outcome === 'not_found') return undefined
  transport.ensureOk(reply, `HEAD ${path}`)
  return { digest, size: contentLength(reply.headers) }
}

/** GET a small blob (an image config), capped at `maxBytes`, its digest verified. */
export async function getBlob(
  transport: Transport,
  repository: string,
  digest: string,
  opts: { maxBytes?: number } & Cancellable,
): Promise<Buffer> {
  assertRepository(repository)
  assertDigest(digest)
  const path = transport.path(`/v2/${repository}/blobs/${digest}`)
  const reply = await transport.expectOk({
    method: 'GET',
    path,
    scope: scopes.pull(repository),
    maxBytes: opts.maxBytes ?? DEFAULT_BLOB_BYTES,
    followRedirect: true,
    signal: opts.signal,
  })
  const actual = digestOf(reply.body, digestAlgorithm(digest))
  if (actual !== digest) throw transport.mismatch(path, digest, actual)
  return reply.body
}

/**
 * Monolithic upload: `POST /v2/<name>/blobs/uploads/` then `PUT <location>&digest=…` with the
 * whole body (distribution 2.8 has no single-POST upload). Skipped when the blob exists.
 */
export async function pushBlob(
  transport: Transport,
  repository: string,
  bytes: Buffer,
): Promise<PushResult & { existed: boolean }> {
  assertRepository(repository)
  const digest = digestOf(bytes, 'sha256')
  if (await headBlob(transport, repository, digest)) return { digest, size: bytes.length, existed: true }
  const start = transport.path(`/v2/${repository}/blobs/uploads/`)
  const started = await transport.expectOk({ method: 'POST', path: start, scope: scopes.push(repository) })
  const put = uploadLocation(transport, started.headers, start)
  put.searchParams.set('digest', digest)
  const path = `${put.pathname}${put.search}`
  const reply = await transport.expectOk({
    method: 'PUT',
    path,
    scope: scopes.push(repository),
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  })
  transport.checkReturnedDigest(reply, put.pathname, digest)
  return { digest, size: bytes.length, existed: false }
}

/** The upload URL; credentials go with the PUT, so it must stay on the registry's origin. */
function uploadLocation(transport: Transport, headers: Headers, start: string): URL {
  const location = header(headers, 'location')
  if (location === undefined) {
    throw new ociErrors.REGISTRY_ERROR(transport.registry, `POST ${start}`, 'no Location header')
  }
  const url = new URL(location, transport.url.origin)
  if (url.origin !== transport.url.origin) {
    throw new ociErrors.REGISTRY_ERROR(
      transport.registry,
      `POST ${start}`,
      'upload location on another origin',
    )
  }
  return url
}
