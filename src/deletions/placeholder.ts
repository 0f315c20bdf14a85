import { digestOf, MediaTypes, type RegistryClient } from '../oci/index.js'

/**
 * Untag without a tag DELETE (distribution 2.8 has none): push a tiny manifest of the same family
 * onto the tag, then delete that manifest by digest. Deleting by digest removes every tag on that
 * digest, and the only one is the tag we want gone; the image and its other tags are untouched.
 * (regclient's "dummy manifest" method.)
 *
 * The placeholder is a pure function of the repository, the tag and what it replaces: a retry after
 * a crash rebuilds the very same bytes, finds the tag already pointing at them and deletes them,
 * instead of pushing a second placeholder and leaving the first one behind. Its config carries
 * labels naming the tag, so it never has an existing image's digest and is recognisable as ours.
 */
export interface Placeholder {
  digest: string
  mediaType: string
  bytes: Buffer
  config: Buffer
}

/** `replaces`: the digest being untagged, or `dangling` for a tag that resolves to nothing. */
export function placeholderFor(
  repository: string,
  tag: string,
  replaces: string,
  family: string,
): Placeholder {
  const oci = !family.startsWith('application/vnd.docker.')
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Labels: {
          'regent.untag': tag,
          'regent.untag.repository': repository,
          'regent.untag.replaces': replaces,
        },
      },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  )
  const mediaType = oci ? MediaTypes.OciManifest : MediaTypes.DockerManifest
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType: oci ? MediaTypes.OciConfig : MediaTypes.DockerConfig,
        digest: digestOf(config, 'sha256'),
        size: config.length,
      },
      layers: [],
    }),
  )
  return { digest: digestOf(bytes, 'sha256'), mediaType, bytes, config }
}

/** Puts the placeholder (its config blob first) onto the tag. Idempotent: a second push changes nothing. */
export async function pushPlaceholder(
  client: RegistryClient,
  repository: string,
  tag: string,
  placeholder: Placeholder,
): Promise<void> {
  await client.pushBlob(repository, placeholder.config)
  await client.putManifest(repository, tag, placeholder.mediaType, placeholder.bytes)
}
