import { type GovernanceConfig, matchesGlob, owningTeams } from '../governance/index.js'
import { mapLimit } from '../registries/map-limit.js'
import type { RegistrySet } from '../registries/registry-set.js'
import { type FactsContext, gatherRepository, type RepositoryFacts } from './facts.js'
import { type ArtifactVerdict, evaluateRules, judgesBy, timeOf } from './rules.js'
import type { ExpiredArtifact, GuardResult, PolicyFields, PolicyGuards, RunCounts, RunRow } from './sql.js'
import { markInUse, type UsageLookup } from './usage.js'

/**
 * A policy evaluated over every repository it covers: the verdict for each artifact, what would be
 * deleted, the bytes that frees, the blast-radius guard, and the difference from last time. Reads
 * only: nothing here writes to a registry.
 */

export interface RepositoryEvaluation {
  repository: string
  totalTags: number
  expiredTags: number
  /** Artifacts the rules would expire that are kept because they are in use. */
  keptInUse: number
  bytes: number
  verdicts: (ArtifactVerdict & { timeSources: { push: string; pull: string } })[]
  error?: string
}

export interface Evaluation {
  evaluatedAt: Date
  repositories: RepositoryEvaluation[]
  expired: ExpiredArtifact[]
  counts: RunCounts
}

export interface EvaluateDeps extends Omit<FactsContext, 'needsCreated'> {
  registries: RegistrySet
  /** Repositories evaluated at once (`retention.concurrency`). */
  concurrency: number
  /** In-use awareness: what runs or is referenced is kept. */
  usage?: UsageLookup
}

/** Evaluates a policy now and checks its guards: what previews and runs judge by. */
export interface PolicyEvaluator {
  evaluate(policy: PolicyFields): Promise<Evaluation>
  guard(evaluation: Evaluation, policy: PolicyFields): GuardResult
}

export async function evaluatePolicy(deps: EvaluateDeps, policy: PolicyFields): Promise<Evaluation> {
  const repositories = await coveredRepositories(deps.registries, deps.governance, policy)
  const needsCreated = judgesBy(policy.rules, 'created')
  const results = await mapLimit(repositories, deps.concurrency, async (repository) => {
    try {
      const facts = await gatherRepository({ ...deps, needsCreated }, policy.registry, repository)
      if (deps.usage) await markInUse(deps.usage, policy.registry, facts)
      return judge(facts, policy, deps.now)
    } catch (err) {
      // One unreadable repository must not hide the others; it deletes nothing and says why.
      return {
        repository,
        totalTags: 0,
        expiredTags: 0,
        keptInUse: 0,
        bytes: 0,
        verdicts: [],
        error: (err as Error).message,
      } satisfies RepositoryEvaluation
    }
  })
  const expired = results.flatMap((r) =>
    r.verdicts
      .filter((v) => v.decision === 'expire')
      .map((v) => ({ repository: r.repository, digest: v.digest, tags: v.tags })),
  )
  return {
    evaluatedAt: deps.now,
    repositories: results,
    expired,
    counts: {
      repositories: results.length,
      artifacts: results.reduce((n, r) => n + r.verdicts.length, 0),
      tags: results.reduce((n, r) => n + r.totalTags, 0),
      expiredArtifacts: expired.length,
      expiredTags: results.reduce((n, r) => n + r.expiredTags, 0),
      keptInUse: results.reduce((n, r) => n + r.keptInUse, 0),
      bytes: results.reduce((n, r) => n + r.bytes, 0),
    },
  }
}

/** Repositories of the registry the policy's globs match; a team policy sees only its team's. */
async function coveredRepositories(
  registries: RegistrySet,
  governance: GovernanceConfig,
  policy: PolicyFields,
): Promise<string[]> {
  const { client } = registries.get(policy.registry)
  const out: string[] = []
  for await (const repository of client.catalog({ pageSize: 1000 })) {
    if (!policy.repositories.some((glob) => matchesGlob(glob, repository))) continue
    if (policy.team && !owningTeams(governance, policy.registry, repository).includes(policy.team)) continue
    out.push(repository)
  }
  return out.sort()
}

function judge(facts: RepositoryFacts, policy: PolicyFields, now: Date): RepositoryEvaluation {
  const verdicts = evaluateRules(facts.artifacts, policy.rules, now)
  const byDigest = new Map(facts.artifacts.map((a) => [a.digest, a]))
  // Bytes freed: blobs expired manifests use that no kept manifest of the repository uses.
  const keptBlobs = new Set<string>()
  const expiredBlobs = new Map<string, number>()
  for (const v of verdicts) {
    for (const [blob, size] of facts.blobs.get(v.digest) ?? []) {
      if (v.decision === 'keep') keptBlobs.add(blob)
      else expiredBlobs.set(blob, size)
    }
  }
  let bytes = 0
  for (const [blob, size] of expiredBlobs) if (!keptBlobs.has(blob)) bytes += size
  return {
    repository: facts.repository,
    totalTags: facts.totalTags,
    expiredTags: verdicts.filter((v) => v.decision === 'expire').reduce((n, v) => n + v.tags.length, 0),
    keptInUse: verdicts.filter((v) => v.decidedBy === 'in-use').length,
    bytes,
    verdicts: verdicts.map((v) => {
      const artifact = byDigest.get(v.digest)
      return {
        ...v,
        timeSources: {
          push: artifact ? timeOf(artifact, 'push').source : 'unknown',
          pull: artifact ? (artifact.pulledAt ? 'events' : 'none recorded') : 'unknown',
        },
      }
    }),
  }
}

/**
 * The blast-radius guard: a run that would delete every tag of a repository, more than the
 * allowed share of one, or more manifests than the allowed count stops and waits for an admin.
 * A policy may only tighten the configured limits.
 */
export function checkGuards(
  evaluation: Evaluation,
  configured: { maxShare: number; maxCount: number },
  policy: PolicyGuards,
): GuardResult {
  const limits = {
    maxShare: Math.min(configured.maxShare, policy.maxShare ?? 1),
    maxCount: Math.min(configured.maxCount, policy.maxCount ?? Number.MAX_SAFE_INTEGER),
  }
  const reasons: string[] = []
  for (const repo of evaluation.repositories) {
    if (repo.totalTags === 0 || repo.expiredTags === 0) continue
    const share = repo.expiredTags / repo.totalTags
    if (repo.expiredTags >= repo.totalTags) {
      reasons.push(`would delete every tag of ${repo.repository} (${repo.totalTags})`)
    } else if (share > limits.maxShare) {
      reasons.push(
        `would delete ${repo.expiredTags} of ${repo.totalTags} tags of ${repo.repository} (${Math.round(share * 100)}%, limit ${Math.round(limits.maxShare * 100)}%)`,
      )
    }
  }
  if (evaluation.expired.length > limits.maxCount) {
    reasons.push(`would delete ${evaluation.expired.length} manifests (limit ${limits.maxCount})`)
  }
  return { tripped: reasons.length > 0, reasons, limits, keptInUse: evaluation.counts.keptInUse ?? 0 }
}

export interface EvaluationDiff {
  against: { id: string; kind: string; createdAt: string } | null
  newlyExpired: ExpiredArtifact[]
  noLongerExpired: ExpiredArtifact[]
}

export function diffAgainst(expired: ExpiredArtifact[], previous: RunRow | undefined): EvaluationDiff {
  if (!previous?.expired) return { against: null, newlyExpired: expired, noLongerExpired: [] }
  const key = (e: ExpiredArtifact) => `${e.repository}@${e.digest}`
  const now = new Set(expired.map(key))
  const before = new Set(previous.expired.map(key))
  return {
    against: { id: previous.id, kind: previous.kind, createdAt: previous.created_at.toISOString() },
    newlyExpired: expired.filter((e) => !before.has(key(e))),
    noLongerExpired: previous.expired.filter((e) => !now.has(key(e))),
  }
}
