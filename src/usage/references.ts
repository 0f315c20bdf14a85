import { type ImageReference, parseImageReference, type RegistryHosts } from './image-reference.js'

/** Where an image is run or referenced: one row of usage_references, before it is stored. */
export interface CollectedReference {
  registry: string
  repository: string
  /** The digest run (a pod's imageID) or named by the reference. */
  digest: string | null
  /** The tag the reference pulls by; null when it names a digest. */
  tag: string | null
  cluster: string
  namespace: string
  kind: string
  name: string
  container: string
  ownerKind: string | null
  ownerName: string | null
  /** A pod runs this digest (as opposed to naming it in a spec). */
  running: boolean
  /** Pods counted at this place: a workload's pods are one reference, not one per pod. */
  pods: number
}

export interface Location {
  cluster: string
  namespace: string
  kind: string
  name: string
  container: string
  ownerKind?: string | null
  ownerName?: string | null
  /** The pod this reference comes from, counted once per place; absent for templates. */
  pod?: string
}

/**
 * Turns image strings into references of configured registries. Images of registries Regent does
 * not front (public images, other registries) are counted and dropped: nothing Regent could delete.
 */
export class ReferenceCollector {
  readonly references: CollectedReference[] = []
  /**
   * Distinct rows: a pod naming a digest and running it is one row, not two, and the pods of one
   * workload are one row with their count (10,000 pods are a few thousand rows).
   */
  private readonly byKey = new Map<string, CollectedReference>()
  private readonly podsAt = new Map<CollectedReference, Set<string>>()
  unmatched = 0
  unparsable = 0

  constructor(
    private readonly hosts: RegistryHosts,
    /** Registries this source may speak for (its `registries`), or undefined for all. */
    private readonly covers?: ReadonlySet<string>,
  ) {}

  /** A spec or template reference: pulls the digest it names, or else its tag. */
  addImage(image: string, at: Location): ImageReference | undefined {
    const ref = parseImageReference(image)
    if (!ref) {
      this.unparsable++
      return undefined
    }
    const registry = this.map(ref)
    if (!registry) return ref
    this.add(
      { registry, repository: ref.repository, digest: ref.digest, tag: ref.digest ? null : ref.tag },
      at,
      false,
    )
    return ref
  }

  /** A digest a pod runs, in the repository `ref` names (the imageID's, or the spec's). */
  addRunning(ref: ImageReference, digest: string, at: Location): void {
    const registry = this.map(ref)
    if (!registry) return
    this.add({ registry, repository: ref.repository, digest, tag: null }, at, true)
  }

  /** The configured registry for a reference, or undefined (counted) when there is none. */
  registryOf(ref: ImageReference): string | undefined {
    const registry = this.hosts.registryOf(ref.host)
    return registry && (!this.covers || this.covers.has(registry)) ? registry : undefined
  }

  private map(ref: ImageReference): string | undefined {
    const registry = this.registryOf(ref)
    if (!registry) this.unmatched++
    return registry
  }

  private add(
    what: { registry: string; repository: string; digest: string | null; tag: string | null },
    at: Location,
    running: boolean,
  ): void {
    const row: CollectedReference = {
      ...what,
      cluster: at.cluster,
      namespace: at.namespace,
      kind: at.kind,
      name: at.name,
      container: at.container,
      ownerKind: at.ownerKind ?? null,
      ownerName: at.ownerName ?? null,
      running,
      pods: 0,
    }
    const key = [
      row.registry,
      row.repository,
      row.digest,
      row.tag,
      row.cluster,
      row.namespace,
      row.kind,
      row.name,
      row.container,
    ].join('\u0000')
    let known = this.byKey.get(key)
    if (known) {
      // The same place naming the same image twice: running it is the stronger statement.
      known.running ||= running
    } else {
      known = row
      this.byKey.set(key, row)
      this.references.push(row)
    }
    if (at.pod) {
      const pods = this.podsAt.get(known) ?? new Set<string>()
      pods.add(at.pod)
      this.podsAt.set(known, pods)
      known.pods = pods.size
    }
  }
}
