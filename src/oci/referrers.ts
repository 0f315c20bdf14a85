import type { Cancellable } from './abort.js'
import { scopes } from './auth.js'
import { ociErrors } from './errors.js'
import { getManifest, headManifest } from './manifests.js'
import {
  baseMediaType,
  type Descriptor,
  MAX_MANIFEST_BYTES,
  MediaTypes,
  parseManifest,
} from './media-types.js'
import { assertDigest, assertRepository } from './reference.js'
import { header, type Reply, type Transport } from './transport.js'

export interface Referrers {
  /** `api`: `GET /v2/<name>/referrers/<digest>`; `tag-schema`: the `sha256-<hex>` fallback tag. */
  via: 'api' | 'tag-schema'
  referrers: Descriptor[]
  /** The fallback tag read (or that would hold them) when `via` is `tag-schema`. */
  tag?: string
}

/**
 * Manifests whose `subject` is `digest`: the referrers API, or, where it is absent (404 without
 * an OCI index body: distribution 2.8 answers a plain-text "404 page not found"), the
 * `<alg>-<hex>` tag schema of OCI distribution-spec 1.1 §Referrers tag schema.
 */
export async function referrers(
  transport: Transport,
  repository: string,
  digest: string,
  opts: { artifactType?: string } & Cancellable,
): Promise<Referrers> {
  assertRepository(repository)
  assertDigest(digest)
  const query =
    opts.artifactType === undefined ? '' : `?${new URLSearchParams({ artifactType: opts.artifactType })}`
  const path = transport.path(`/v2/${repository}/referrers/${digest}${query}`)
  const reply = await transport.exchange({
    method: 'GET',
    path,
    scope: scopes.pull(repository),
    headers: { accept: MediaTypes.OciIndex },
    maxBytes: MAX_MANIFEST_BYTES,
    signal: opts.signal,
  })
  if (answeredByApi(reply)) {
    const children = indexChildren(reply.body, transport.registry)
    return { via: 'api', referrers: filterByType(children, opts.artifactType) }
  }
  if (reply.status !== 404) throw transport.fail(reply.classification, `GET ${path}`)
  return referrersFromTag(transport, repository, digest, opts)
}

async function referrersFromTag(
  transport: Transport,
  repository: string,
  digest: string,
  opts: { artifactType?: string } & Cancellable,
): Promise<Referrers> {
  const tag = referrersTag(digest)
  const cancellable = { signal: opts.signal }
  const head = await headManifest(transport, repository, tag, cancellable)
  if (head === undefined) return { via: 'tag-schema', referrers: [], tag }
  const { manifest } = await getManifest(transport, repository, head.digest, cancellable)
  const children = manifest.kind === 'index' ? manifest.manifests : []
  return { via: 'tag-schema', referrers: filterByType(children, opts.artifactType), tag }
}

/** OCI 1.1 referrers tag schema: `<alg>-<ref>`, truncated to the 128 characters a tag may have. */
export function referrersTag(digest: string): string {
  return assertDigest(digest).replace(':', '-').slice(0, 128)
}

/**
 * The referrers API answered: 200, or a 404 whose body is an OCI index (a registry with the API
 * and nothing referring). A 404 of any other kind means the API is absent.
 */
export function answeredByApi(reply: Reply): boolean {
  return reply.status === 200 || (reply.status === 404 && isIndexBody(reply))
}

function isIndexBody(reply: Reply): boolean {
  if (baseMediaType(header(reply.headers, 'content-type')) === MediaTypes.OciIndex) return true
  try {
    return Array.isArray((JSON.parse(reply.body.toString('utf8')) as { manifests?: unknown }).manifests)
  } catch {
    return false
  }
}

function indexChildren(body: Buffer, registry: string): Descriptor[] {
  const manifest = parseManifest(body, MediaTypes.OciIndex)
  if (manifest.kind !== 'index') throw new ociErrors.REGISTRY_ERROR(registry, 'referrers', 'not an index')
  return manifest.manifests
}

function filterByType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? descriptors : descriptors.filter((d) => d.artifactType === artifactType)
}
