export { untilAborted } from './abort.js'
export { type AuthKind, scopes } from './auth.js'
export type { BlobHead } from './blobs.js'
export { type Challenge, checkRealm, isLoopbackHost, parseWwwAuthenticate } from './challenge.js'
export { RegistryClient } from './client.js'
export { Secret } from './credentials.js'
export {
  type Classification,
  classifyNetworkError,
  classifyResponse,
  isRegistryError,
  type Outcome,
  ociErrors,
  parseRetryAfter,
  type RegistryError,
} from './errors.js'
export { nextLink } from './listing.js'
export type { FetchedManifest, ManifestHead, MutationResult, PushResult } from './manifests.js'
export {
  baseMediaType,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageManifest,
  type IndexChild,
  type IndexManifest,
  isLegacyMediaType,
  type LegacyManifest,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  type Manifest,
  type ManifestKind,
  MediaTypes,
  manifestKindOf,
  type Platform,
  parseImageConfig,
  parseManifest,
} from './media-types.js'
export type { Capabilities } from './probe.js'
export {
  assertDigest,
  assertRepository,
  assertTag,
  digestOf,
  isDigest,
  isRepositoryName,
  isTag,
  parseReference,
  type Reference,
} from './reference.js'
export { type Referrers, referrersTag } from './referrers.js'
export { type Logger, type PingResult, type RegistryClientOptions, USER_AGENT } from './transport.js'
