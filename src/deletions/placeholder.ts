import { randomUUID } from 'node:crypto'
import { digestOf, MediaTypes, type RegistryClient } from '../oci/index.js'

/**
 * Untag without a tag DELETE (distribution 2.8 has none): push a tiny manifest of the same family
 * onto the tag, then delete that manifest by digest. Deleting by digest removes every tag on that
 * digest, and the only one is the tag we want gone; the image and its other tags are untouched.
 * The config carries a unique label, so the placeholder's digest is never an existing image's.
 * (regclient's "dummy manifest" method, survey section 2.)
 */
export async function buildPlaceholder(
  client: RegistryClient,
  repository: string,
  tag: string,
  family: string,
): Promise<{ digest: string; mediaType: string; bytes: Buffer }> {
  const oci = family.startsWith('application/vnd.oci.')
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Labels: {
          'regent.untag': tag,
          'regent.untag.id': randomUUID(),
          'regent.untag.at': new Date().toISOString(),
        },
      },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  )
  const pushed = await client.pushBlob(repository, config)
  const mediaType = oci ? MediaTypes.OciManifest : MediaTypes.DockerManifest
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType: oci ? MediaTypes.OciConfig : MediaTypes.DockerConfig,
        digest: pushed.digest,
        size: pushed.size,
      },
      layers: [],
    }),
  )
  return { digest: digestOf(bytes, 'sha256'), mediaType, bytes }
}
