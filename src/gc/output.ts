/**
 * Reads what a garbage collector printed. distribution's `registry garbage-collect` (2.8 and 3.x)
 * prints, after its mark phase,
 *
 *     3 blobs marked, 2 blobs and 0 manifests eligible for deletion
 *     blob eligible for deletion: sha256:…
 *     manifest eligible for deletion: sha256:…      (with --delete-untagged)
 *
 * the same in a dry run and in a real one. Harbor's GC job log says "7 blobs and 1 manifests
 * eligible for deletion", "… are actually deleted" and "The GC job actual frees up 34 MB space."
 * The parser is fed line by line, so a collector printing one line per blob of a huge registry is
 * never held in memory whole.
 */
export interface GcReport {
  markedBlobs: number | null
  eligibleBlobs: number | null
  eligibleManifests: number | null
  /** Digests listed as eligible; capped (see MAX_DIGESTS), `digestsTruncated` says so. */
  eligibleBlobDigests: string[]
  eligibleManifestDigests: string[]
  digestsTruncated: boolean
  collectedBlobs: number | null
  collectedManifests: number | null
  /** Bytes the collector said it freed (Harbor reports whole MiB). */
  reportedFreedBytes: number | null
}

const MAX_DIGESTS = 1_000_000

const SUMMARY = /(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion/
const HARBOR_ELIGIBLE = /(\d+) blobs and (\d+) manifests eligible for deletion/
const BLOB = /blob eligible for deletion: ([a-z0-9]+:[a-f0-9]+)/
const MANIFEST = /manifest eligible for deletion: ([a-z0-9]+:[a-f0-9]+)/
const COLLECTED = /(\d+) blobs and (\d+) manifests are actually deleted/
const FREED = /frees up (\d+) MB space/

export class GcOutputParser {
  readonly report: GcReport = {
    markedBlobs: null,
    eligibleBlobs: null,
    eligibleManifests: null,
    eligibleBlobDigests: [],
    eligibleManifestDigests: [],
    digestsTruncated: false,
    collectedBlobs: null,
    collectedManifests: null,
    reportedFreedBytes: null,
  }

  line(text: string): void {
    const r = this.report
    let m = BLOB.exec(text)
    if (m) {
      this.digest(r.eligibleBlobDigests, m[1]!)
      return
    }
    m = MANIFEST.exec(text)
    if (m) {
      this.digest(r.eligibleManifestDigests, m[1]!)
      return
    }
    m = SUMMARY.exec(text)
    if (m) {
      r.markedBlobs = Number(m[1])
      r.eligibleBlobs = Number(m[2])
      r.eligibleManifests = Number(m[3])
      return
    }
    m = HARBOR_ELIGIBLE.exec(text)
    if (m) {
      r.eligibleBlobs = Number(m[1])
      r.eligibleManifests = Number(m[2])
      return
    }
    m = COLLECTED.exec(text)
    if (m) {
      r.collectedBlobs = Number(m[1])
      r.collectedManifests = Number(m[2])
      return
    }
    m = FREED.exec(text)
    if (m) r.reportedFreedBytes = Number(m[1]) * 1024 * 1024
  }

  private digest(list: string[], digest: string): void {
    if (list.length < MAX_DIGESTS) list.push(digest)
    else this.report.digestsTruncated = true
  }
}

export function parseGcOutput(text: string): GcReport {
  const parser = new GcOutputParser()
  for (const line of text.split('\n')) parser.line(line)
  return parser.report
}

/** Share of the registry's blobs a run would remove: eligible / (marked + eligible). */
export function eligibleShare(report: GcReport): number | null {
  if (report.markedBlobs === null || report.eligibleBlobs === null) return null
  const total = report.markedBlobs + report.eligibleBlobs
  return total === 0 ? 0 : report.eligibleBlobs / total
}
