import type { Cancellable } from './abort.js'
import { scopes } from './auth.js'
import { type Outcome, ociErrors } from './errors.js'
import {
  baseMediaType,
  isLegacyMediaType,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  type Manifest,
  type ManifestKind,
  manifestKindOf,
  parseManifest,
} from './media-types.js'
import {
  assertDigest,
  assertRepository,
  assertTag,
  digestAlgorithm,
  digestOf,
  isDigest,
  parseReference,
} from './reference.js'
import { contentLength, header, type Reply, type Transport } from './transport.js'

export interface ManifestHead {
  digest: string
  mediaType: string
  /** Content-Length of the manifest; -1 when the registry did not send it. */
  size: number
  kind: ManifestKind | undefined
}

export interface FetchedManifest {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  manifest: Manifest
}

/** What a delete did. Other outcomes (denied, rate limited, network, …) are thrown. */
export interface MutationResult {
  outcome: Extract<Outcome, 'ok' | 'not_found' | 'delete_disabled'>
  status: number
  ociCode?: string
}

export interface PushResult {
  digest: string
  size: number
}

/** HEAD with the full Accept list; undefined when the registry answers 404. */
export async function headManifest(
  transport: Transport,
  repository: string,
  reference: string,
  opts: Cancellable,
): Promise<ManifestHead | undefined> {
  assertRepository(repository)
  const ref = parseReference(reference)
  const path = transport.path(`/v2/${repository}/manifests/${reference}`)
  const reply = await transport.exchange({
    method: 'HEAD',
    path,
    scope: scopes.pull(repository),
    headers: { accept: MANIFEST_ACCEPT },
    signal: opts.signal,
  })
  if (reply.classification.outcome === 'not_found') return undefined
  transport.ensureOk(reply, `HEAD ${path}`)
  const returned = header(reply.headers, 'docker-content-digest')
  // Asked by digest, the registry must confirm that digest (when it answers in the same algorithm).
  if (
    ref.kind === 'digest' &&
    returned !== undefined &&
    sameAlgorithm(returned, ref.digest) &&
    returned !== ref.digest
  ) {
    throw transport.mismatch(path, ref.digest, returned)
  }
  const digest = ref.kind === 'digest' ? ref.digest : returned
  if (digest === undefined || !isDigest(digest)) {
    // Without Docker-Content-Digest the digest can only come from the bytes.
    const got = await getManifest(transport, repository, reference, opts)
    return { digest: got.digest, mediaType: got.mediaType, size: got.size, kind: got.manifest.kind }
  }
  const mediaType = baseMediaType(header(reply.headers, 'content-type')) ?? 'application/octet-stream'
  return { digest, mediaType, size: contentLength(reply.headers), kind: manifestKindOf(mediaType) }
}

/**
 * GET with the full Accept list. The body's hash must equal the digest asked for, or, for a
 * tag, the `Docker-Content-Digest` the registry returned: anything else is a corrupted or
 * tampered answer and fails with `REGENT_DIGEST_MISMATCH`.
 */
export async function getManifest(
  transport: Transport,
  repository: string,
  reference: string,
  opts: Cancellable,
): Promise<FetchedManifest> {
  assertRepository(repository)
  const ref = parseReference(reference)
  const path = transport.path(`/v2/${repository}/manifests/${reference}`)
  const reply = await transport.expectOk({
    method: 'GET',
    path,
    scope: scopes.pull(repository),
    headers: { accept: MANIFEST_ACCEPT },
    maxBytes: MAX_MANIFEST_BYTES,
    signal: opts.signal,
  })
  const returned = header(reply.headers, 'docker-content-digest')
  const expected =
    ref.kind === 'digest' ? ref.digest : returned !== undefined && isDigest(returned) ? returned : undefined
  const digest = digestOf(reply.body, expected === undefined ? 'sha256' : digestAlgorithm(expected))
  if (expected !== undefined && digest !== expected) throw transport.mismatch(path, expected, digest)
  const manifest = parseManifest(reply.body, header(reply.headers, 'content-type'))
  return { digest, mediaType: manifest.mediaType, size: reply.body.length, bytes: reply.body, manifest }
}

/**
 * PUT a manifest (restore, untag placeholder). Never retried. Legacy schema 1 types are refused;
 * the body must parse, and the registry's `Docker-Content-Digest` must equal our hash.
 */
export async function putManifest(
  transport: Transport,
  repository: string,
  reference: string,
  mediaType: string,
  bytes: Buffer,
): Promise<PushResult> {
  assertRepository(repository)
  const ref = parseReference(reference)
  if (isLegacyMediaType(mediaType)) {
    throw new ociErrors.LEGACY_MANIFEST(`${repository}:${reference}`, mediaType)
  }
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ociErrors.RESPONSE_TOO_LARGE(`PUT manifest ${repository}:${reference}`, MAX_MANIFEST_BYTES)
  }
  parseManifest(bytes, mediaType)
  const digest = digestOf(bytes, ref.kind === 'digest' ? digestAlgorithm(ref.digest) : 'sha256')
  const path = transport.path(`/v2/${repository}/manifests/${reference}`)
  if (ref.kind === 'digest' && ref.digest !== digest) throw transport.mismatch(path, ref.digest, digest)
  const reply = await transport.expectOk({
    method: 'PUT',
    path,
    scope: scopes.push(repository),
    headers: { 'content-type': mediaType },
    body: bytes,
  })
  transport.checkReturnedDigest(reply, path, digest)
  return { digest, size: bytes.length }
}

/**
 * DELETE by digest: removes the manifest and every tag pointing at it (distribution
 * `DeleteManifest` untags them all). Returns ok / not_found / delete_disabled and leaves the
 * meaning of a 404 to the caller: only a caller that tried this very delete before may read it as
 * "already deleted". Never retried: a retried DELETE whose first answer was lost comes back 404.
 */
export async function deleteManifest(
  transport: Transport,
  repository: string,
  digest: string,
  opts: { mediaType?: string },
): Promise<MutationResult> {
  assertRepository(repository)
  assertDigest(digest)
  const known = await refuseLegacy(transport, repository, digest, opts.mediaType)
  if (!known) return { outcome: 'not_found', status: 404 }
  return deleteAt(transport, repository, `/v2/${repository}/manifests/${digest}`)
}

/**
 * OCI 1.1 tag delete (`DELETE /v2/<name>/manifests/<tag>`). distribution 2.8 does not support it
 * and answers 400 `DIGEST_INVALID`, which comes back as `delete_disabled`: callers decide (the
 * probe's `tagDelete` says whether the placeholder fallback is needed).
 */
export async function deleteTag(
  transport: Transport,
  repository: string,
  tag: string,
  opts: { mediaType?: string },
): Promise<MutationResult> {
  assertRepository(repository)
  assertTag(tag)
  const known = await refuseLegacy(transport, repository, tag, opts.mediaType)
  if (!known) return { outcome: 'not_found', status: 404 }
  return deleteAt(transport, repository, `/v2/${repository}/manifests/${tag}`)
}

/** False when the manifest does not exist; throws for schema 1 ones. */
async function refuseLegacy(
  transport: Transport,
  repository: string,
  reference: string,
  mediaType: string | undefined,
): Promise<boolean> {
  const type = mediaType ?? (await headManifest(transport, repository, reference, {}))?.mediaType
  if (type === undefined) return false
  if (isLegacyMediaType(type)) throw new ociErrors.LEGACY_MANIFEST(`${repository}@${reference}`, type)
  return true
}

async function deleteAt(transport: Transport, repository: string, path: string): Promise<MutationResult> {
  const full = transport.path(path)
  const reply = await transport.exchange({ method: 'DELETE', path: full, scope: scopes.delete(repository) })
  return mutationResult(transport, reply, `DELETE ${full}`)
}

function mutationResult(transport: Transport, reply: Reply, what: string): MutationResult {
  const c = reply.classification
  if (c.outcome !== 'ok' && c.outcome !== 'not_found' && c.outcome !== 'delete_disabled') {
    throw transport.fail(c, what)
  }
  const result: MutationResult = { outcome: c.outcome, status: reply.status }
  if (c.ociCode !== undefined) result.ociCode = c.ociCode
  transport.log.info({ registry: transport.registry, request: what, ...result }, 'registry delete answered')
  return result
}

function sameAlgorithm(a: string, b: string): boolean {
  return a.split(':')[0] === b.split(':')[0]
}
