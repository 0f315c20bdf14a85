import { isDigest, isRepositoryName, isTag } from '../oci/reference.js'
import type { RegistryConfig } from '../registries/config-schema.js'

/**
 * Image references as container runtimes read them (distribution's `reference` package): an
 * optional host (`registry.example.com`, `host:5000`, `localhost`), a path, an optional `:tag` and
 * an optional `@sha256:…`. Without a host the image is on Docker Hub (`docker.io`), and a
 * one-segment Docker Hub name is under `library/`. A reference with a digest pulls that digest,
 * whatever tag it also names.
 */

export const DOCKER_HUB = 'docker.io'
/** Names Docker Hub is also reached by; all mean docker.io. */
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

export interface ImageReference {
  /** Normalised host (`docker.io`, `registry.example.com`, `host:5000`). */
  host: string
  repository: string
  tag: string | null
  digest: string | null
}

/** Parses an image reference; undefined when it is not one (an empty string, a bad digest…). */
export function parseImageReference(text: string): ImageReference | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 1024) return undefined
  let rest = text.trim()
  let digest: string | null = null
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!isDigest(digest)) return undefined
  }
  let tag: string | null = null
  const lastSlash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!isTag(tag)) return undefined
  }
  const slash = rest.indexOf('/')
  const first = slash >= 0 ? rest.slice(0, slash) : ''
  let host = DOCKER_HUB
  let path = rest
  if (
    slash >= 0 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))
  ) {
    host = normaliseHost(first)
    path = rest.slice(slash + 1)
  }
  if (host === DOCKER_HUB && !path.includes('/')) path = `library/${path}`
  if (!isRepositoryName(path)) return undefined
  // A reference naming neither pulls `latest`.
  if (tag === null && digest === null) tag = 'latest'
  return { host, repository: path, tag, digest }
}

/**
 * A pod's `status.*ContainerStatuses[].imageID`: `docker-pullable://repo@sha256:…` (dockershim),
 * `repo@sha256:…` (containerd, CRI-O), or a bare `sha256:…` (`docker://sha256:…`), which is the
 * runtime's image id: no repository, and possibly the config digest rather than a manifest's.
 */
export function parseImageId(text: string): { reference: ImageReference | null; digest: string } | undefined {
  if (typeof text !== 'string' || text.length === 0) return undefined
  const bare = text.replace(/^[a-z-]+:\/\//, '')
  if (isDigest(bare)) return { reference: null, digest: bare }
  const reference = parseImageReference(bare)
  if (!reference?.digest) return undefined
  return { reference, digest: reference.digest }
}

/** Lower case; `:443` dropped (what a runtime assumes); Docker Hub's other names become docker.io. */
export function normaliseHost(host: string): string {
  const lower = host.toLowerCase().replace(/:443$/, '')
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower
}

/** Which configured registry an image host means: its URL's host, or one of its aliases. */
export class RegistryHosts {
  private readonly byHost = new Map<string, string>()

  constructor(registries: Pick<RegistryConfig, 'name' | 'url' | 'aliases'>[]) {
    for (const registry of registries) {
      const url = new URL(registry.url)
      const hosts = [url.host, ...(registry.aliases ?? [])]
      if (url.protocol === 'http:' && !url.port) hosts.push(`${url.hostname}:80`)
      for (const host of hosts) {
        const key = normaliseHost(host)
        // The first registry naming a host keeps it: two registries behind one host are one place.
        if (!this.byHost.has(key)) this.byHost.set(key, registry.name)
      }
    }
  }

  registryOf(host: string): string | undefined {
    return this.byHost.get(normaliseHost(host))
  }
}
