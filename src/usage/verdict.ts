import { plural } from '../http/format.js'
import type { PlaceRow, UsageLookupRow } from './sql.js'

/**
 * Usage verdicts, pure: from the places a lookup found and the age of each source's data.
 *
 * A digest is in use while anything runs it or names it, or names one of its CURRENT tags by that
 * tag: a pod keeps running the digest it pulled when its tag moves on, and the workload naming the
 * tag pulls the tag's new digest at its next start, so both digests count, each for its own reason.
 * A source covering the registry whose data is older than its staleness limit (or that never
 * synced) cannot vouch for anything: with no place found, the verdict is `unknown`, not `unused`.
 */

export type UsageStatus = 'in-use' | 'unused' | 'unknown'

/** One place that runs or names a digest (a workload's pods are one place with a count). */
export interface UsageLocation {
  source: string
  cluster: string
  namespace: string
  /** Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, or an inventory's kind. */
  kind: string
  name: string
  container: string
  /** `running`: pods run this digest; `digest`: a spec names it; `tag`: a spec names `reference` by tag. */
  by: 'running' | 'digest' | 'tag'
  /** The digest or the tag named. */
  reference: string
  /** Pods counted at this place (0 for a template or an inventory entry). */
  pods: number
  firstSeenAt: string
}

export interface UsageVerdict {
  status: 'in-use' | 'unused' | 'unknown'
  /** Strongest first: places running it, then naming its digest, then naming one of its tags. */
  where: UsageLocation[]
  /** Sources covering the registry whose data is too old (or missing): why a verdict is unknown. */
  staleSources: string[]
  /** The last pull registry events recorded for the digest: a weaker signal, never "in use" alone. */
  lastPulledAt: string | null
}

/**
 * What other features need of in-use awareness (the UsageService): verdicts for one repository's
 * candidates in one look-up, whether a verdict counts as in use, and the verdict in one line.
 */
export interface UsageLookup {
  usageOf(
    registry: string,
    repository: string,
    candidates: { digest: string; tags: string[] }[],
  ): Promise<Map<string, UsageVerdict>>
  countsAsInUse(verdict: UsageVerdict): boolean
  describe(verdict: UsageVerdict): string
}

export interface UsageCandidate {
  digest: string
  /** The tags pointing at the digest now. */
  tags: string[]
}

export interface SourceCoverage {
  name: string
  staleAfterMs: number
  /** Registries the source speaks for; undefined: every registry. */
  registries?: readonly string[]
}

const STRENGTH = { running: 0, digest: 1, tag: 2 } as const

export function coveringSources(sources: readonly SourceCoverage[], registry: string): SourceCoverage[] {
  return sources.filter((s) => !s.registries || s.registries.includes(registry))
}

export function buildVerdicts(
  candidates: readonly UsageCandidate[],
  lookup: UsageLookupRow,
  pulls: ReadonlyMap<string, Date>,
  covering: readonly SourceCoverage[],
): Map<string, UsageVerdict> {
  const ages = new Map(lookup.sources.map((s) => [s.name, s.age_ms]))
  const staleSources = covering
    .filter((s) => {
      const age = ages.get(s.name)
      return age === null || age === undefined || age > s.staleAfterMs
    })
    .map((s) => s.name)
  const byDigest = new Map<string, PlaceRow[]>()
  const byTag = new Map<string, PlaceRow[]>()
  for (const place of lookup.places) {
    if (place.digest) push(byDigest, place.digest, place)
    if (place.tag) push(byTag, place.tag, place)
  }

  const verdicts = new Map<string, UsageVerdict>()
  for (const candidate of candidates) {
    const found = new Map<string, UsageLocation>()
    const consider = (place: PlaceRow, by: UsageLocation['by'], reference: string) => {
      const key = [
        place.source,
        place.cluster,
        place.namespace,
        place.kind,
        place.name,
        place.container,
      ].join('\u0000')
      const known = found.get(key)
      const location: UsageLocation = {
        source: place.source,
        cluster: place.cluster,
        namespace: place.namespace,
        kind: place.kind,
        name: place.name,
        container: place.container,
        by,
        reference,
        pods: place.pods,
        firstSeenAt: new Date(place.first_seen_at).toISOString(),
      }
      if (!known) found.set(key, location)
      else
        found.set(key, {
          ...(STRENGTH[by] < STRENGTH[known.by] ? location : known),
          pods: Math.max(known.pods, place.pods),
        })
    }
    for (const place of byDigest.get(candidate.digest) ?? [])
      consider(place, place.running ? 'running' : 'digest', candidate.digest)
    for (const tag of candidate.tags) for (const place of byTag.get(tag) ?? []) consider(place, 'tag', tag)
    const where = [...found.values()].sort(
      (a, b) =>
        STRENGTH[a.by] - STRENGTH[b.by] ||
        b.pods - a.pods ||
        `${a.cluster}/${a.namespace}/${a.kind}/${a.name}`.localeCompare(
          `${b.cluster}/${b.namespace}/${b.kind}/${b.name}`,
        ),
    )
    const pulled = pulls.get(candidate.digest)
    verdicts.set(candidate.digest, {
      status: where.length > 0 ? 'in-use' : staleSources.length > 0 ? 'unknown' : 'unused',
      where,
      staleSources,
      lastPulledAt: pulled ? pulled.toISOString() : null,
    })
  }
  return verdicts
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

const SHORT_KINDS: Record<string, string> = {
  Deployment: 'deploy',
  StatefulSet: 'sts',
  DaemonSet: 'ds',
  ReplicaSet: 'rs',
  Job: 'job',
  CronJob: 'cronjob',
  Pod: 'pod',
}

/** `prod/payments deploy/api`, as kubectl users write it. */
export function describeLocation(location: UsageLocation): string {
  const where = [location.cluster, location.namespace].filter(Boolean).join('/')
  const what = `${SHORT_KINDS[location.kind] ?? location.kind.toLowerCase()}/${location.name}`
  return where ? `${where} ${what}` : what
}

/**
 * One line for people: "running in prod/payments deploy/api, 3 pods", "referenced by tag nightly
 * in prod/batch cronjob/report", "usage unknown: source prod has no sync within its staleness
 * limit", "not in use; pulled 3d ago".
 */
export function describeUsage(verdict: UsageVerdict, now: Date = new Date()): string {
  const pulled = verdict.lastPulledAt
    ? `pulled ${ago(now.getTime() - Date.parse(verdict.lastPulledAt))} ago`
    : null
  if (verdict.status === 'in-use') {
    const first = verdict.where[0] as UsageLocation
    const how =
      first.by === 'running'
        ? 'running'
        : first.by === 'digest'
          ? 'referenced by digest'
          : `referenced by tag ${first.reference}`
    // A bare pod is its own place: "pod/x, 1 pod" would say nothing more.
    const pods = first.pods > 0 && first.kind !== 'Pod' ? `, ${plural(first.pods, 'pod')}` : ''
    const more = verdict.where.length > 1 ? ` (and ${plural(verdict.where.length - 1, 'more place')})` : ''
    return `${how} in ${describeLocation(first)}${pods}${more}`
  }
  if (verdict.status === 'unknown') {
    const names = verdict.staleSources.join(', ')
    return `usage unknown: ${verdict.staleSources.length === 1 ? 'source' : 'sources'} ${names} not synced within the staleness limit${pulled ? `; ${pulled}` : ''}`
  }
  return `not in use${pulled ? `; ${pulled}` : ''}`
}

function ago(ms: number): string {
  const abs = Math.max(0, ms)
  if (abs >= 86_400_000) return `${Math.floor(abs / 86_400_000)}d`
  if (abs >= 3_600_000) return `${Math.floor(abs / 3_600_000)}h`
  if (abs >= 60_000) return `${Math.floor(abs / 60_000)}m`
  return `${Math.floor(abs / 1000)}s`
}
