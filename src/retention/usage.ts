import type { UsageLookup } from '../usage/index.js'
import type { RepositoryFacts } from './facts.js'

export type { UsageLookup }

/**
 * Marks the artifacts of one repository that are in use, with the reason the preview shows. An
 * index is in use when it or one of its children is (a pod may run one platform's manifest; the
 * index's deletion would take it). Usage that is unknown counts as in use unless configured
 * otherwise. One usage lookup per repository.
 */
export async function markInUse(usage: UsageLookup, registry: string, facts: RepositoryFacts): Promise<void> {
  const candidates = new Map<string, string[]>()
  for (const artifact of facts.artifacts) {
    candidates.set(artifact.digest, artifact.tags)
    for (const child of artifact.children) if (!candidates.has(child)) candidates.set(child, [])
  }
  if (candidates.size === 0) return
  const verdicts = await usage.usageOf(
    registry,
    facts.repository,
    [...candidates].map(([digest, tags]) => ({ digest, tags })),
  )
  for (const artifact of facts.artifacts) {
    const own = verdicts.get(artifact.digest)
    if (own && usage.countsAsInUse(own)) {
      artifact.inUse = usage.describe(own)
      continue
    }
    for (const child of artifact.children) {
      const verdict = verdicts.get(child)
      if (verdict && usage.countsAsInUse(verdict)) {
        artifact.inUse = `its child ${child}: ${usage.describe(verdict)}`
        break
      }
    }
  }
}
