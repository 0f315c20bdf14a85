import type { RegistryConfig } from '../registries/config-schema.js'
import type { Cancellable } from './abort.js'
import { type BlobHead, getBlob, headBlob, pushBlob } from './blobs.js'
import { catalog, tags } from './listing.js'
import {
  deleteManifest,
  deleteTag,
  type FetchedManifest,
  getManifest,
  headManifest,
  type ManifestHead,
  type MutationResult,
  type PushResult,
  putManifest,
} from './manifests.js'
import { type ImageConfig, parseImageConfig } from './media-types.js'
import { type Capabilities, probeCapabilities } from './probe.js'
import { type Referrers, referrers } from './referrers.js'
import { type PingResult, type RegistryClientOptions, Transport } from './transport.js'

export type { RegistryClientOptions } from './transport.js'

/**
 * The registry protocol client (OCI distribution / Docker Registry HTTP API v2) for one configured
 * registry. The work lives in one module per part of the protocol (listing, manifests, blobs,
 * referrers, the capability probe), each given the registry's transport (transport.ts: the undici
 * pool, authentication, retries and body handling); this class is the one door to them.
 *
 * Calls a caller may give up on (`catalog`, `tags`, `headManifest`, `getManifest`, `getBlob`,
 * `referrers`) take a `signal`: once it is aborted no further request or retry starts, and the
 * call rejects at once with the signal's reason.
 */
export class RegistryClient {
  readonly name: string
  readonly url: URL
  readonly #transport: Transport
  #capabilities: Capabilities | undefined
  #probing: Promise<Capabilities> | undefined

  constructor(config: RegistryConfig, options: RegistryClientOptions = {}) {
    this.#transport = new Transport(config, options)
    this.name = config.name
    this.url = this.#transport.url
  }

  async close(): Promise<void> {
    await this.#transport.close()
  }

  /** Anonymous `GET /v2/`: reachability and the auth scheme the registry asks for. */
  async ping(): Promise<PingResult> {
    return this.#transport.ping(true)
  }

  /** Repository names, page by page, holding one page at a time. */
  catalog(
    opts: { pageSize?: number; last?: string } & Cancellable = {},
  ): AsyncGenerator<string, void, undefined> {
    return catalog(this.#transport, opts)
  }

  /** Tags of a repository, page by page. */
  tags(
    repository: string,
    opts: { pageSize?: number } & Cancellable = {},
  ): AsyncGenerator<string, void, undefined> {
    return tags(this.#transport, repository, opts)
  }

  /** HEAD with the full Accept list; undefined when the registry answers 404. */
  async headManifest(
    repository: string,
    reference: string,
    opts: Cancellable = {},
  ): Promise<ManifestHead | undefined> {
    return headManifest(this.#transport, repository, reference, opts)
  }

  /** GET with the full Accept list, the body's hash checked against the digest. */
  async getManifest(repository: string, reference: string, opts: Cancellable = {}): Promise<FetchedManifest> {
    return getManifest(this.#transport, repository, reference, opts)
  }

  /** PUT a manifest (restore, untag placeholder). Never retried. */
  async putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    bytes: Buffer,
  ): Promise<PushResult> {
    return putManifest(this.#transport, repository, reference, mediaType, bytes)
  }

  /** DELETE by digest: removes the manifest and every tag pointing at it. Never retried. */
  async deleteManifest(
    repository: string,
    digest: string,
    opts: { mediaType?: string } = {},
  ): Promise<MutationResult> {
    return deleteManifest(this.#transport, repository, digest, opts)
  }

  /** OCI 1.1 tag delete; `delete_disabled` where the registry does not support it. */
  async deleteTag(
    repository: string,
    tag: string,
    opts: { mediaType?: string } = {},
  ): Promise<MutationResult> {
    return deleteTag(this.#transport, repository, tag, opts)
  }

  /** undefined when the registry answers 404. */
  async headBlob(repository: string, digest: string): Promise<BlobHead | undefined> {
    return headBlob(this.#transport, repository, digest)
  }

  /** GET a small blob (an image config), capped at `maxBytes`, its digest verified. */
  async getBlob(
    repository: string,
    digest: string,
    opts: { maxBytes?: number } & Cancellable = {},
  ): Promise<Buffer> {
    return getBlob(this.#transport, repository, digest, opts)
  }

  async getImageConfig(
    repository: string,
    digest: string,
    opts: { maxBytes?: number } = {},
  ): Promise<ImageConfig> {
    return parseImageConfig(await this.getBlob(repository, digest, opts))
  }

  /** Monolithic blob upload; skipped when the blob exists. */
  async pushBlob(repository: string, bytes: Buffer): Promise<PushResult & { existed: boolean }> {
    return pushBlob(this.#transport, repository, bytes)
  }

  /** Manifests whose `subject` is `digest`: the referrers API, or the OCI 1.1 tag schema. */
  async referrers(
    repository: string,
    digest: string,
    opts: { artifactType?: string } & Cancellable = {},
  ): Promise<Referrers> {
    return referrers(this.#transport, repository, digest, opts)
  }

  /** What this registry can do, probed without changing anything. Cached; `refresh` probes again. */
  async probe(opts: { refresh?: boolean; repository?: string } = {}): Promise<Capabilities> {
    if (!opts.refresh && this.#capabilities) return this.#capabilities
    this.#probing ??= probeCapabilities(this.#transport, opts.repository).finally(() => {
      this.#probing = undefined
    })
    this.#capabilities = await this.#probing
    return this.#capabilities
  }

  get capabilities(): Capabilities | undefined {
    return this.#capabilities
  }
}
