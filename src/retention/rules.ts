import { compileTagPattern } from '../governance/index.js'

/**
 * The retention rule language and its evaluator: pure functions over the facts of one repository.
 *
 * A policy is an ordered list of rules plus a default. Rules select artifacts (digests, with all
 * their tags) and either keep or expire them:
 * - keep rules (Harbor's retain rules, GitLab's keep regex and keep_n) are OR-ed: an artifact any
 *   keep rule keeps is kept, whatever the order;
 * - expire rules (ECR's rules, by priority): an artifact belongs to the first expire rule that
 *   selects it; that rule expires it or spares it, and later expire rules do not see it again;
 * - an artifact no rule decides gets the policy's default: `keep` (ECR, GitLab) or `expire`
 *   (Harbor: what no rule retains is deleted).
 * Counting conditions (`mostRecent`, `beyondCount`) count every artifact the rule selects, as ECR
 * and Harbor do. Verdicts are per artifact, so a digest shared by several tags is kept when any of
 * its tags is kept, and they are decided together; protected and held tags are always kept, and
 * so are what is in use (`inUse`) and the children of a kept index.
 */

export type TimeBasis = 'push' | 'created' | 'pull'
export type TagStatus = 'tagged' | 'untagged' | 'any'

export interface Selection {
  /** `tagged` (default), `untagged` or `any`. */
  tagStatus?: TagStatus
  /** Tag patterns (glob or anchored `/regex/`); an artifact is selected when one of its tags matches. */
  include?: string[]
  /** Tags matching any of these do not count as matches. */
  exclude?: string[]
  /** ECR's tagPatternList semantics: every include pattern must match one of the artifact's tags. */
  matchAll?: boolean
}

export type KeepCondition =
  | { always: true }
  | { mostRecent: { count: number; by: TimeBasis } }
  | { within: { age: string; by: TimeBasis } }

export type ExpireCondition =
  | { always: true }
  | { olderThan: { age: string; by: TimeBasis } }
  | { beyondCount: { count: number; by: TimeBasis } }

export interface RetentionRule {
  description?: string
  select?: Selection
  keep?: KeepCondition
  expire?: ExpireCondition
}

export interface RuleSet {
  rules: RetentionRule[]
  /** What happens to an artifact no rule decides. */
  default: 'keep' | 'expire'
}

/** Where a time came from: registry events, or what stands in when there are none. */
export type TimeSource = 'events' | 'first-seen' | 'config' | 'push-standin'

export interface ArtifactFacts {
  digest: string
  /** Tags pointing at it now; empty for an untagged manifest. */
  tags: string[]
  kind: 'image' | 'index' | 'other'
  /** For an index: its children's digests. */
  children: string[]
  pushedAt: Date
  pushedSource: 'events' | 'first-seen'
  /** The image config's `created` (newest child's for an index), when known. */
  createdAt: Date | null
  /** Last pull seen in registry events, if any. */
  pulledAt: Date | null
  /** Tags kept whatever the rules say, and why (protection rule, legal hold). */
  shielded: { tag: string | null; reason: string }[]
  /**
   * Why the artifact is in use (a cluster runs it, a workload names it or one of its tags, or its
   * usage is unknown and counts as in use); absent when it is not. What is in use is never expired.
   */
  inUse?: string
}

export type Decision = 'keep' | 'expire'

export interface ArtifactVerdict {
  digest: string
  tags: string[]
  decision: Decision
  /** Which rule decided, as `rules[i]` plus its description, or `default`, `protection`, `index`. */
  decidedBy: string
  /** The fact that decided it, in words: "pushed 20d ago (events), older than 14d". */
  fact: string
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const DURATION = /^(\d{1,6})([smhdw])$/

/** `45s`, `30m`, `12h`, `14d`, `2w` → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text)
  if (!match) return undefined
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

/** Whether any rule judges by `by` (facts gathering fetches image configs only for `created`). */
export function judgesBy(set: RuleSet, by: TimeBasis): boolean {
  return set.rules.some((rule) =>
    Object.values((rule.keep ?? rule.expire ?? {}) as Record<string, { by?: TimeBasis } | true>).some(
      (condition) => typeof condition === 'object' && condition.by === by,
    ),
  )
}

/** Every problem of a rule set, one line each naming the rule; empty when it is valid. */
export function ruleSetProblems(set: RuleSet): string[] {
  const problems: string[] = []
  set.rules.forEach((rule, i) => {
    const at = `rules[${i}]`
    if ((rule.keep === undefined) === (rule.expire === undefined))
      problems.push(`${at}: give exactly one of keep or expire`)
    for (const pattern of [...(rule.select?.include ?? []), ...(rule.select?.exclude ?? [])]) {
      try {
        compileTagPattern(pattern)
      } catch (err) {
        problems.push(`${at}: tag pattern ${pattern}: ${(err as Error).message}`)
      }
    }
    if (rule.select?.tagStatus === 'untagged' && (rule.select.include?.length || rule.select.exclude?.length))
      problems.push(`${at}: an untagged selection cannot have tag patterns`)
    const condition = (rule.keep ?? rule.expire ?? {}) as Record<string, { age?: string } | undefined>
    for (const value of Object.values(condition)) {
      if (
        value &&
        typeof value === 'object' &&
        value.age !== undefined &&
        parseDuration(value.age) === undefined
      )
        problems.push(`${at}: age ${value.age} is not a duration like 45s, 30m, 12h, 14d or 2w`)
    }
  })
  return problems
}

interface CompiledSelection {
  status: TagStatus
  include: { test(tag: string): boolean }[]
  exclude: { test(tag: string): boolean }[]
  matchAll: boolean
}

function compileSelection(select: Selection = {}): CompiledSelection {
  return {
    status: select.tagStatus ?? 'tagged',
    include: (select.include ?? []).map((p) => compileTagPattern(p)),
    exclude: (select.exclude ?? []).map((p) => compileTagPattern(p)),
    matchAll: select.matchAll ?? false,
  }
}

function selects(selection: CompiledSelection, artifact: ArtifactFacts): boolean {
  const tagged = artifact.tags.length > 0
  if (!tagged) return selection.status !== 'tagged' && selection.include.length === 0
  if (selection.status === 'untagged') return false
  const candidates = artifact.tags.filter((tag) => !selection.exclude.some((p) => p.test(tag)))
  if (candidates.length === 0) return false
  if (selection.include.length === 0) return true
  return selection.matchAll
    ? selection.include.every((p) => candidates.some((tag) => p.test(tag)))
    : candidates.some((tag) => selection.include.some((p) => p.test(tag)))
}

/** The time an artifact is judged by, with the words the preview shows for it. */
export function timeOf(artifact: ArtifactFacts, by: TimeBasis): { at: Date; source: TimeSource } {
  if (by === 'created' && artifact.createdAt) return { at: artifact.createdAt, source: 'config' }
  if (by === 'pull' && artifact.pulledAt) return { at: artifact.pulledAt, source: 'events' }
  // No pull recorded (or no config time): the push time stands in, which errs towards keeping.
  return {
    at: artifact.pushedAt,
    source: by === 'push' ? artifact.pushedSource : 'push-standin',
  }
}

function describeTime(artifact: ArtifactFacts, by: TimeBasis, now: Date): string {
  const { at, source } = timeOf(artifact, by)
  const verb = { push: 'pushed', created: 'created', pull: 'pulled' }[by]
  const why =
    source === 'push-standin'
      ? by === 'pull'
        ? 'no pull recorded, push time stands in'
        : 'no config time, push time stands in'
      : source
  return `${verb} ${age(now.getTime() - at.getTime())} ago (${why})`
}

function age(ms: number): string {
  const abs = Math.max(0, ms)
  if (abs >= UNIT_MS.d!) return `${Math.floor(abs / UNIT_MS.d!)}d`
  if (abs >= UNIT_MS.h!) return `${Math.floor(abs / UNIT_MS.h!)}h`
  if (abs >= UNIT_MS.m!) return `${Math.floor(abs / UNIT_MS.m!)}m`
  return `${Math.floor(abs / UNIT_MS.s!)}s`
}

/** Newest first by the basis; ties broken by digest so the order never depends on input order. */
function newestFirst(artifacts: ArtifactFacts[], by: TimeBasis): ArtifactFacts[] {
  return [...artifacts].sort(
    (a, b) => timeOf(b, by).at.getTime() - timeOf(a, by).at.getTime() || a.digest.localeCompare(b.digest),
  )
}

function ruleName(rule: RetentionRule, index: number): string {
  return `rules[${index}]${rule.description ? ` (${rule.description})` : ''}`
}

interface Outcome {
  decision: Decision
  fact: string
}

/** What one rule says about each artifact it selects. */
function applyRule(rule: RetentionRule, selected: ArtifactFacts[], now: Date): Map<string, Outcome> {
  const out = new Map<string, Outcome>()
  const condition = (rule.keep ?? rule.expire) as Record<string, unknown>
  const keeping = rule.keep !== undefined
  if ('always' in condition) {
    for (const a of selected)
      out.set(a.digest, {
        decision: keeping ? 'keep' : 'expire',
        fact: keeping ? 'always kept' : 'always expired',
      })
    return out
  }
  const counted = (condition.mostRecent ?? condition.beyondCount) as
    | { count: number; by: TimeBasis }
    | undefined
  if (counted) {
    newestFirst(selected, counted.by).forEach((a, rank) => {
      const within = rank < counted.count
      const fact = `${describeTime(a, counted.by, now)}, #${rank + 1} newest of ${selected.length} selected, ${keeping ? 'keep' : 'expire beyond'} ${counted.count}`
      // For a keep rule, 'expire' only means "not kept by this rule".
      out.set(a.digest, { decision: within ? 'keep' : 'expire', fact })
    })
    return out
  }
  const timed = (condition.within ?? condition.olderThan) as { age: string; by: TimeBasis }
  const limit = parseDuration(timed.age) ?? 0
  for (const a of selected) {
    const older = now.getTime() - timeOf(a, timed.by).at.getTime() > limit
    const fact = `${describeTime(a, timed.by, now)}, ${keeping ? 'keep within' : 'expire older than'} ${timed.age}`
    out.set(a.digest, { decision: older ? 'expire' : 'keep', fact })
  }
  return out
}

/**
 * Verdicts for every artifact of one repository. Pure: the same facts, rules and `now` always
 * give the same verdicts, in the order of `artifacts`.
 */
export function evaluateRules(artifacts: ArtifactFacts[], set: RuleSet, now: Date): ArtifactVerdict[] {
  const keptBy = new Map<string, { rule: string; fact: string }>()
  const claimedBy = new Map<string, { rule: string; outcome: Outcome }>()
  // Why a keep rule that selected an artifact did not keep it: the default's verdict explains itself.
  const missedBy = new Map<string, string>()
  set.rules.forEach((rule, index) => {
    const selection = compileSelection(rule.select)
    const selected = artifacts.filter((a) => selects(selection, a))
    const outcomes = applyRule(rule, selected, now)
    for (const [digest, outcome] of outcomes) {
      if (rule.keep) {
        if (outcome.decision === 'keep' && !keptBy.has(digest))
          keptBy.set(digest, { rule: ruleName(rule, index), fact: outcome.fact })
        else if (outcome.decision !== 'keep' && !missedBy.has(digest))
          missedBy.set(digest, `${ruleName(rule, index)}: ${outcome.fact}`)
      } else if (!claimedBy.has(digest)) {
        claimedBy.set(digest, { rule: ruleName(rule, index), outcome })
      }
    }
  })

  const verdicts = new Map<string, ArtifactVerdict>()
  for (const a of artifacts) {
    const base = { digest: a.digest, tags: [...a.tags] }
    const shield = a.shielded[0]
    const kept = keptBy.get(a.digest)
    const claim = claimedBy.get(a.digest)
    if (shield) {
      verdicts.set(a.digest, { ...base, decision: 'keep', decidedBy: 'protection', fact: shield.reason })
    } else if (kept) {
      verdicts.set(a.digest, { ...base, decision: 'keep', decidedBy: kept.rule, fact: kept.fact })
    } else if (claim) {
      verdicts.set(a.digest, {
        ...base,
        decision: claim.outcome.decision,
        decidedBy: claim.rule,
        fact: claim.outcome.decision === 'keep' ? `spared: ${claim.outcome.fact}` : claim.outcome.fact,
      })
    } else {
      verdicts.set(a.digest, {
        ...base,
        decision: set.default,
        decidedBy: 'default',
        fact: `no rule decides it${missedBy.has(a.digest) ? ` (${missedBy.get(a.digest)})` : ''}; the policy default is ${set.default}`,
      })
    }
  }
  // What is in use is never expired. Only what the rules would expire is kept "by usage", so the
  // preview and the run counts say how much usage held back.
  for (const a of artifacts) {
    const verdict = verdicts.get(a.digest) as ArtifactVerdict
    if (a.inUse && verdict.decision === 'expire')
      verdicts.set(a.digest, { ...verdict, decision: 'keep', decidedBy: 'in-use', fact: a.inUse })
  }
  keepIndexFamilies(artifacts, verdicts)
  return artifacts.map((a) => verdicts.get(a.digest) as ArtifactVerdict)
}

/**
 * A kept index keeps its children; an expiring index whose child is kept (it has a kept tag of its
 * own, say) is kept too, because deleting the image would take that child with it. Repeats until
 * nothing changes, so nested indexes settle.
 */
function keepIndexFamilies(artifacts: ArtifactFacts[], verdicts: Map<string, ArtifactVerdict>): void {
  const indexes = artifacts.filter((a) => a.kind === 'index')
  let changed = true
  while (changed) {
    changed = false
    for (const index of indexes) {
      const verdict = verdicts.get(index.digest) as ArtifactVerdict
      for (const child of index.children) {
        const childVerdict = verdicts.get(child)
        if (!childVerdict) continue
        if (verdict.decision === 'keep' && childVerdict.decision === 'expire') {
          verdicts.set(child, {
            ...childVerdict,
            decision: 'keep',
            decidedBy: 'index',
            fact: `child of kept index ${index.digest}`,
          })
          changed = true
        } else if (verdict.decision === 'expire' && childVerdict.decision === 'keep') {
          verdicts.set(index.digest, {
            ...verdict,
            decision: 'keep',
            decidedBy: 'index',
            fact: `its child ${child} is kept (${childVerdict.decidedBy}), and deleting the index would take it`,
          })
          changed = true
          break
        }
      }
    }
  }
}
