import type { Descriptor, ImageConfig } from '../oci/index.js'
import type { TagHead } from './content-cache.js'

/**
 * What browsing answers with: plain data built from manifests and image configs, the same for the
 * REST routes and the GraphQL resolvers.
 */

export interface PlatformView {
  digest: string
  os?: string
  architecture?: string
  variant?: string
  size?: number
  created?: string
}

/** Whether something runs or names a tag's image (set only when it does, or cannot be told). */
export interface TagUsage {
  status: 'in-use' | 'unknown'
  reason: string
}

/**
 * In-use awareness for tag answers, from the usage feature when it is present: one look-up per
 * page. It answers per tag: what runs or names the digest, or names this very tag.
 */
export type TagUsageLookup = (
  registry: string,
  repository: string,
  tags: { tag: string; digest: string }[],
) => Promise<Map<string, TagUsage>>

export interface TagView {
  name: string
  digest: string
  mediaType: string
  kind: 'image' | 'index' | 'legacy' | 'unknown'
  /** Config + layers; for an index, every distinct blob of its platforms. */
  size?: number
  created?: string
  platforms?: PlatformView[]
  sharedWith: string[]
  inUse?: TagUsage
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export type TagPage = Page<TagView> & { sharedWithComplete: boolean; dangling: string[] }

/** The tags pointing at each digest, in the order of `heads`. */
export function groupTagsByDigest(heads: Map<string, TagHead>): Map<string, string[]> {
  const byDigest = new Map<string, string[]>()
  for (const [tag, head] of heads) {
    const list = byDigest.get(head.digest)
    if (list) list.push(tag)
    else byDigest.set(head.digest, [tag])
  }
  return byDigest
}

export function sizeOf(config: Descriptor, layers: Descriptor[]): number {
  return config.size + layers.reduce((sum, layer) => sum + layer.size, 0)
}

export function descriptorView(d: Descriptor) {
  return {
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  }
}

export function configView(descriptor: Descriptor, config: ImageConfig) {
  return {
    digest: descriptor.digest,
    size: descriptor.size,
    ...(config.os ? { os: config.os } : {}),
    ...(config.architecture ? { architecture: config.architecture } : {}),
    ...(config.variant ? { variant: config.variant } : {}),
    ...(config.created ? { created: config.created } : {}),
    ...(config.author ? { author: config.author } : {}),
    labels: config.labels,
  }
}

export interface HistoryView {
  created?: string
  createdBy?: string
  comment?: string
  emptyLayer: boolean
  size: number
  layerDigest?: string
}

/**
 * `docker history`: every history entry, newest last as in the config; entries that made a layer
 * take that layer's size in order, empty ones (ENV, CMD, …) are 0 bytes.
 */
export function historyView(config: ImageConfig, layers: Descriptor[]): HistoryView[] {
  let next = 0
  return config.history.map((entry) => {
    const layer = entry.emptyLayer ? undefined : layers[next++]
    return {
      ...(entry.created ? { created: entry.created } : {}),
      ...(entry.createdBy ? { createdBy: entry.createdBy } : {}),
      ...(entry.comment ? { comment: entry.comment } : {}),
      emptyLayer: entry.emptyLayer,
      size: layer?.size ?? 0,
      ...(layer ? { layerDigest: layer.digest } : {}),
    }
  })
}
