import { lstat, opendir } from 'node:fs/promises'
import path from 'node:path'

/**
 * Space accounting over a filesystem-backed registry's storage folder
 * (`storage.filesystem.rootdirectory`): the sum of the sizes of its regular files. Directories
 * and link files distribution leaves behind are tiny and not what GC is about; blob data is.
 */
export async function storageBytes(root: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0
  let files = 0
  const walk = async (dir: string): Promise<void> => {
    const handle = await opendir(dir)
    for await (const entry of handle) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (entry.isFile()) {
        bytes += (await lstat(full)).size
        files++
      }
    }
  }
  await walk(root)
  return { bytes, files }
}

/**
 * Bytes of these blobs in distribution's filesystem layout
 * (`docker/registry/v2/blobs/<alg>/<first two hex>/<hex>/data`); a blob not found counts 0.
 */
export async function blobBytes(root: string, digests: string[]): Promise<number> {
  let total = 0
  for (const digest of new Set(digests)) {
    const [algorithm, hex] = digest.split(':')
    if (!algorithm || !hex || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) continue
    const file = path.join(root, 'docker', 'registry', 'v2', 'blobs', algorithm, hex.slice(0, 2), hex, 'data')
    total += await lstat(file).then(
      (s) => s.size,
      () => 0,
    )
  }
  return total
}
