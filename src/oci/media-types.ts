import { ociErrors } from './errors.js'
import { isDigest } from './reference.js'

export const MediaTypes = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
} as const

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.OciIndex, MediaTypes.DockerManifestList])
const IMAGE_TYPES: ReadonlySet<string> = new Set([MediaTypes.OciManifest, MediaTypes.DockerManifest])
const LEGACY_TYPES: ReadonlySet<string> = new Set([MediaTypes.DockerSchema1Signed, MediaTypes.DockerSchema1])

/**
 * Sent on every manifest HEAD and GET. Without the schema 2 and OCI types distribution answers
 * with a converted manifest whose digest is not the stored one (distribution #1656), so a delete by
 * that digest would miss. Schema 1 types come last so legacy manifests are served as they are and
 * can be recognised rather than failing the request.
 */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaTypes.OciIndex,
  MediaTypes.OciManifest,
  MediaTypes.DockerManifestList,
  MediaTypes.DockerManifest,
  MediaTypes.DockerSchema1Signed,
  MediaTypes.DockerSchema1,
]

export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ')

/** distribution refuses manifests over 4 MiB (`maxManifestBodySize`); nothing bigger is real. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

export type ManifestKind = 'index' | 'image' | 'legacy'

export interface Platform {
  architecture: string
  os: string
  variant?: string
  osVersion?: string
  osFeatures?: string[]
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
  urls?: string[]
}

export interface IndexChild extends Descriptor {
  platform?: Platform
}

interface ManifestCommon {
  mediaType: string
  artifactType?: string
  subject?: Descriptor
  annotations?: Record<string, string>
}

export interface IndexManifest extends ManifestCommon {
  kind: 'index'
  manifests: IndexChild[]
}

export interface ImageManifest extends ManifestCommon {
  kind: 'image'
  config: Descriptor
  layers: Descriptor[]
}

/** Docker schema 1: recognised and labelled, never changed (see `REGENT_LEGACY_MANIFEST`). */
export interface LegacyManifest {
  kind: 'legacy'
  mediaType: string
  name?: string
  tag?: string
}

export type Manifest = IndexManifest | ImageManifest | LegacyManifest

/** Media type without parameters (`; charset=utf-8`), lower-cased. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  const base = contentType?.split(';')[0]?.trim().toLowerCase()
  return base ? base : undefined
}

export function manifestKindOf(mediaType: string | undefined): ManifestKind | undefined {
  const base = baseMediaType(mediaType)
  if (base === undefined) return undefined
  if (INDEX_TYPES.has(base)) return 'index'
  if (IMAGE_TYPES.has(base)) return 'image'
  if (LEGACY_TYPES.has(base)) return 'legacy'
  return undefined
}

export function isLegacyMediaType(mediaType: string | undefined): boolean {
  return manifestKindOf(mediaType) === 'legacy'
}

/**
 * Parses a manifest of any of the four schema 2 / OCI kinds, or labels a schema 1 one. The kind
 * comes from the registry's Content-Type when it names a manifest type, else from the body
 * (`mediaType`, then `schemaVersion`/`manifests`/`config`), because older registries serve OCI
 * manifests as `application/json`.
 */
export function parseManifest(bytes: Buffer, contentType?: string): Manifest {
  const doc = parseJsonObject(bytes, invalid)
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined
  const mediaType = pickMediaType(contentType, declared, doc)
  const kind = manifestKindOf(mediaType)
  if (kind === 'legacy') return legacyManifest(mediaType, doc)
  if (doc.schemaVersion !== 2) invalid(`schemaVersion ${String(doc.schemaVersion)} is not 2`)
  if (kind === 'index') return indexManifest(mediaType, doc)
  if (kind === 'image') return imageManifest(mediaType, doc)
  return invalid(`unsupported manifest media type ${JSON.stringify(mediaType)}`)
}

function pickMediaType(contentType: string | undefined, declared: string | undefined, doc: Json): string {
  const header = baseMediaType(contentType)
  if (manifestKindOf(header) !== undefined) return header as string
  if (declared !== undefined) return declared
  if (doc.schemaVersion === 1) return MediaTypes.DockerSchema1Signed
  if (Array.isArray(doc.manifests)) return MediaTypes.OciIndex
  if (isObject(doc.config)) return MediaTypes.OciManifest
  return header ?? 'unknown'
}

function legacyManifest(mediaType: string, doc: Json): LegacyManifest {
  const m: LegacyManifest = { kind: 'legacy', mediaType }
  if (typeof doc.name === 'string') m.name = doc.name
  if (typeof doc.tag === 'string') m.tag = doc.tag
  return m
}

function indexManifest(mediaType: string, doc: Json): IndexManifest {
  if (!Array.isArray(doc.manifests)) invalid('index without a manifests array')
  const manifests = (doc.manifests as unknown[]).map((entry, i) => {
    const child: IndexChild = descriptor(entry, `manifests[${i}]`)
    const platform = isObject(entry) ? parsePlatform(entry.platform) : undefined
    if (platform) child.platform = platform
    return child
  })
  return withCommon({ kind: 'index', mediaType, manifests }, doc)
}

function imageManifest(mediaType: string, doc: Json): ImageManifest {
  const config = descriptor(doc.config, 'config')
  if (!Array.isArray(doc.layers)) invalid('image manifest without a layers array')
  const layers = (doc.layers as unknown[]).map((entry, i) => descriptor(entry, `layers[${i}]`))
  return withCommon({ kind: 'image', mediaType, config, layers }, doc)
}

function withCommon<M extends IndexManifest | ImageManifest>(m: M, doc: Json): M {
  if (typeof doc.artifactType === 'string') m.artifactType = doc.artifactType
  if (doc.subject !== undefined) m.subject = descriptor(doc.subject, 'subject')
  const annotations = stringMap(doc.annotations)
  if (annotations) m.annotations = annotations
  return m
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) return invalid(`${where} is not an object`)
  const { mediaType, digest, size } = value
  if (typeof mediaType !== 'string' || mediaType.length === 0) invalid(`${where}.mediaType is missing`)
  if (typeof digest !== 'string' || !isDigest(digest))
    invalid(`${where}.digest is not a sha256/sha512 digest`)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    invalid(`${where}.size is not a size`)
  const d: Descriptor = { mediaType: mediaType as string, digest: digest as string, size: size as number }
  if (typeof value.artifactType === 'string') d.artifactType = value.artifactType
  const annotations = stringMap(value.annotations)
  if (annotations) d.annotations = annotations
  if (Array.isArray(value.urls)) d.urls = value.urls.filter((u): u is string => typeof u === 'string')
  return d
}

function parsePlatform(value: unknown): Platform | undefined {
  if (!isObject(value) || typeof value.architecture !== 'string' || typeof value.os !== 'string')
    return undefined
  const p: Platform = { architecture: value.architecture, os: value.os }
  if (typeof value.variant === 'string') p.variant = value.variant
  if (typeof value['os.version'] === 'string') p.osVersion = value['os.version']
  const features = value['os.features']
  if (Array.isArray(features)) p.osFeatures = features.filter((f): f is string => typeof f === 'string')
  return p
}

export interface HistoryEntry {
  created?: string
  createdBy?: string
  emptyLayer: boolean
  comment?: string
  author?: string
}

export interface ImageConfig {
  created?: string
  author?: string
  os?: string
  architecture?: string
  variant?: string
  labels: Record<string, string>
  history: HistoryEntry[]
  diffIds: string[]
}

/** Reads what the browse views need from an image config (OCI image-spec `config.md`). */
export function parseImageConfig(bytes: Buffer): ImageConfig {
  const doc = parseJsonObject(bytes, configInvalid)
  const inner = isObject(doc.config) ? doc.config : {}
  const rootfs = isObject(doc.rootfs) ? doc.rootfs : {}
  const config: ImageConfig = {
    labels: stringMap(inner.Labels) ?? {},
    history: Array.isArray(doc.history) ? doc.history.filter(isObject).map(historyEntry) : [],
    diffIds: Array.isArray(rootfs.diff_ids)
      ? rootfs.diff_ids.filter((d): d is string => typeof d === 'string')
      : [],
  }
  for (const key of ['created', 'author', 'os', 'architecture', 'variant'] as const) {
    const value = doc[key]
    if (typeof value === 'string') config[key] = value
  }
  return config
}

function historyEntry(h: Json): HistoryEntry {
  const entry: HistoryEntry = { emptyLayer: h.empty_layer === true }
  if (typeof h.created === 'string') entry.created = h.created
  if (typeof h.created_by === 'string') entry.createdBy = h.created_by
  if (typeof h.comment === 'string') entry.comment = h.comment
  if (typeof h.author === 'string') entry.author = h.author
  return entry
}

type Json = Record<string, unknown>

function parseJsonObject(bytes: Buffer, fail: (why: string) => never): Json {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    return fail('body is not JSON')
  }
  if (!isObject(doc)) return fail('body is not a JSON object')
  return doc
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function stringMap(value: unknown): Record<string, string> | undefined {
  if (!isObject(value)) return undefined
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v
  return out
}

function invalid(why: string): never {
  throw new ociErrors.MANIFEST_INVALID(why)
}

function configInvalid(why: string): never {
  throw new ociErrors.IMAGE_CONFIG_INVALID(why)
}
