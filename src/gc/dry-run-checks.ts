import type { RegistryClient } from '../oci/index.js'
import type { GcConfig } from './config-schema.js'
import type { GcReport } from './output.js'

/**
 * What in a dry run's report would stop a real run: a collector that printed no summary, too large
 * a share or too many bytes eligible (abortIfShareAbove / abortIfBytesAbove), and untagged children
 * of tagged indexes that --delete-untagged would delete (distribution #3004). Empty: go ahead.
 */
export async function dryRunProblems(
  report: GcReport,
  share: number | null,
  eligibleBytes: number | null | undefined,
  context: { gc: GcConfig; deleteUntagged: boolean; client: RegistryClient; signal: AbortSignal },
): Promise<string[]> {
  const problems: string[] = []
  const { abortIfShareAbove, abortIfBytesAbove } = context.gc
  if (context.gc.executor.kind === 'command' && report.eligibleBlobs === null) {
    problems.push('the dry run printed no "N blobs marked, M blobs and K manifests eligible" summary')
  }
  if (abortIfShareAbove !== undefined) {
    if (share === null) problems.push('abortIfShareAbove is set but the dry run reported no blob counts')
    else if (share > abortIfShareAbove) {
      problems.push(
        `${report.eligibleBlobs} of ${report.eligibleBlobs! + report.markedBlobs!} blobs ` +
          `(${(share * 100).toFixed(1)}%) are eligible, above abortIfShareAbove ${abortIfShareAbove}`,
      )
    }
  }
  if (abortIfBytesAbove !== undefined) {
    if (eligibleBytes == null) problems.push('abortIfBytesAbove needs storagePath to size the eligible blobs')
    else if (eligibleBytes > abortIfBytesAbove) {
      problems.push(`${eligibleBytes} bytes are eligible, above abortIfBytesAbove ${abortIfBytesAbove}`)
    }
  }
  if (context.deleteUntagged && report.eligibleManifestDigests.length > 0) {
    // distribution #3004: --delete-untagged deletes untagged children of tagged indexes.
    const children = await indexChildren(context.client, context.signal)
    const hit = report.eligibleManifestDigests.filter((d) => children.has(d))
    if (hit.length > 0) {
      problems.push(
        `--delete-untagged would delete ${hit.length} manifest(s) that tagged indexes still list ` +
          `(distribution #3004): ${hit.slice(0, 5).join(', ')}`,
      )
    }
  }
  return problems
}

/** Digests of every manifest a tagged index lists (recursively), across the registry. */
async function indexChildren(client: RegistryClient, signal: AbortSignal): Promise<Set<string>> {
  const children = new Set<string>()
  const visit = async (repository: string, reference: string): Promise<void> => {
    const head = await client.headManifest(repository, reference)
    if (head?.kind !== 'index') return
    const { manifest } = await client.getManifest(repository, head.digest)
    if (manifest.kind !== 'index') return
    for (const child of manifest.manifests) {
      if (children.has(child.digest)) continue
      children.add(child.digest)
      await visit(repository, child.digest)
    }
  }
  for await (const repository of client.catalog()) {
    const tags: string[] = []
    try {
      for await (const tag of client.tags(repository)) tags.push(tag)
    } catch {}
    for (const tag of tags) await visit(repository, tag)
    signal.throwIfAborted()
  }
  return children
}
