import t from 'tap'
import {
  type ArtifactFacts,
  evaluateRules,
  judgesBy,
  parseDuration,
  type RetentionRule,
  type RuleSet,
  ruleSetProblems,
} from '../../src/retention/rules.js'

/**
 * The anchors' documented examples, as tables: ECR's lifecycle policy examples, Harbor's tag
 * retention examples and GitLab's cleanup policy order, each written in Regent's rule language
 * (as docs/retention.md, "The anchors, in this language", shows) and checked against the documented
 * answer.
 */

const NOW = new Date('2026-11-28T12:00:00Z')
const DAY = 86_400_000
const ago = (days: number) => new Date(NOW.getTime() - days * DAY)

function artifact(
  name: string,
  tags: string[],
  facts: {
    pushed: number
    pulled?: number
    created?: number
    kind?: ArtifactFacts['kind']
    children?: string[]
  },
): ArtifactFacts {
  return {
    digest: name,
    tags,
    kind: facts.kind ?? 'image',
    children: facts.children ?? [],
    pushedAt: ago(facts.pushed),
    pushedSource: 'events',
    createdAt: facts.created === undefined ? null : ago(facts.created),
    pulledAt: facts.pulled === undefined ? null : ago(facts.pulled),
    shielded: [],
  }
}

function expired(artifacts: ArtifactFacts[], set: RuleSet): string[] {
  t.same(ruleSetProblems(set), [], 'the rule set is valid')
  return evaluateRules(artifacts, set, NOW)
    .filter((v) => v.decision === 'expire')
    .map((v) => v.digest)
    .sort()
}

/** ECR: `tagPrefixList` → include `prefix*` with matchAll; rules by priority; default keep. */
const ecr = (rules: RetentionRule[]): RuleSet => ({ rules, default: 'keep' })

t.test('ECR lifecycle policy examples', async (t) => {
  t.test('filtering on image age: untagged older than 14 days expire', async (t) => {
    const repo = [
      artifact('U1', [], { pushed: 20 }),
      artifact('U2', [], { pushed: 10 }),
      artifact('T', ['v1'], { pushed: 30 }),
    ]
    const set = ecr([
      { select: { tagStatus: 'untagged' }, expire: { olderThan: { age: '14d', by: 'push' } } },
    ])
    t.same(expired(repo, set), ['U1'])
  })

  t.test('filtering on image count: keep one untagged image, expire all others', async (t) => {
    const repo = [
      artifact('U1', [], { pushed: 3 }),
      artifact('U2', [], { pushed: 2 }),
      artifact('U3', [], { pushed: 1 }),
      artifact('T', ['v1'], { pushed: 9 }),
    ]
    const set = ecr([
      { select: { tagStatus: 'untagged' }, expire: { beyondCount: { count: 1, by: 'push' } } },
    ])
    t.same(expired(repo, set), ['U1', 'U2'])
  })

  const abc = () => [
    artifact('A', ['beta-1', 'prod-1'], { pushed: 10 }),
    artifact('B', ['beta-2', 'prod-2'], { pushed: 9 }),
    artifact('C', ['beta-3'], { pushed: 8 }),
  ]
  const countRule = (prefix: string): RetentionRule => ({
    select: { tagStatus: 'tagged', include: [`${prefix}*`], matchAll: true },
    expire: { beyondCount: { count: 1, by: 'push' } },
  })

  t.test('multiple rules, example A: prod first → image A expires', async (t) => {
    t.same(expired(abc(), ecr([countRule('prod'), countRule('beta')])), ['A'])
  })

  t.test('multiple rules, example B: beta first → images A and B expire', async (t) => {
    t.same(expired(abc(), ecr([countRule('beta'), countRule('prod')])), ['A', 'B'])
  })

  t.test('multiple prefixes in one rule, example A: must match all, older than 5 days → C', async (t) => {
    const repo = [
      artifact('A', ['alpha-1'], { pushed: 12 }),
      artifact('B', ['beta-1'], { pushed: 11 }),
      artifact('C', ['alpha-2', 'beta-2'], { pushed: 10 }),
      artifact('D', ['alpha-3'], { pushed: 4 }),
      artifact('E', ['beta-3'], { pushed: 3 }),
      artifact('F', ['alpha-4', 'beta-4'], { pushed: 2 }),
    ]
    const set = ecr([
      {
        select: { tagStatus: 'tagged', include: ['alpha*', 'beta*'], matchAll: true },
        expire: { olderThan: { age: '5d', by: 'push' } },
      },
    ])
    t.same(expired(repo, set), ['C'])
  })

  t.test('multiple prefixes in one rule, example B: tags are not exclusive → A and B', async (t) => {
    const repo = [
      artifact('A', ['alpha-1', 'beta-1', 'gamma-1'], { pushed: 10 }),
      artifact('B', ['alpha-2', 'beta-2'], { pushed: 9 }),
      artifact('C', ['alpha-3', 'beta-3', 'gamma-2'], { pushed: 8 }),
    ]
    const set = ecr([
      {
        select: { tagStatus: 'tagged', include: ['alpha*', 'beta*'], matchAll: true },
        expire: { beyondCount: { count: 1, by: 'push' } },
      },
    ])
    t.same(expired(repo, set), ['A', 'B'])
  })

  t.test('sinceImagePulled: expire tagged images not pulled for 30 days', async (t) => {
    const repo = [
      artifact('old-pull', ['a'], { pushed: 90, pulled: 40 }),
      artifact('recent-pull', ['b'], { pushed: 90, pulled: 2 }),
      // Never pulled: the push time stands in, so a fresh image is not expired for lack of pulls.
      artifact('fresh', ['c'], { pushed: 1 }),
    ]
    const set = ecr([{ select: { tagStatus: 'tagged' }, expire: { olderThan: { age: '30d', by: 'pull' } } }])
    t.same(expired(repo, set), ['old-pull'])
  })
})

/** Harbor: retain rules OR-ed; whatever no rule retains is deleted (default expire). */
const harbor = (rules: RetentionRule[]): RuleSet => ({ rules, default: 'expire' })

t.test('Harbor tag retention examples', async (t) => {
  // Repository A of examples 1–3: 100 tagged artifacts pulled within the week, 2 untagged.
  const repoA = () => [
    ...Array.from({ length: 100 }, (_, i) =>
      artifact(`a${String(i).padStart(3, '0')}`, [`t${i}`], { pushed: 60, pulled: 6 - i * 0.05 }),
    ),
    artifact('u1', [], { pushed: 60, pulled: 5 }),
    artifact('u2', [], { pushed: 60, pulled: 5 }),
  ]
  // Repositories B–E: 6 tagged and 1 untagged, none pulled in the last month.
  const repoB = () => [
    ...Array.from({ length: 6 }, (_, i) => artifact(`b${i}`, [`t${i}`], { pushed: 90, pulled: 40 })),
    artifact('bu', [], { pushed: 90, pulled: 40 }),
  ]
  const tagged = { tagStatus: 'tagged' as const, include: ['**'] }

  t.test('example 1: retain the 10 most recently pulled, per repository', async (t) => {
    const set = harbor([{ select: tagged, keep: { mostRecent: { count: 10, by: 'pull' } } }])
    const a = evaluateRules(repoA(), set, NOW)
    t.equal(a.filter((v) => v.decision === 'keep').length, 10, '10 retained in A')
    t.same(
      a.filter((v) => v.decision === 'keep').map((v) => v.digest),
      Array.from({ length: 10 }, (_, i) => `a${String(90 + i).padStart(3, '0')}`),
      'the 10 most recently pulled',
    )
    const b = evaluateRules(repoB(), set, NOW)
    t.same(
      b.filter((v) => v.decision === 'keep').map((v) => v.digest),
      ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'],
    )
    t.equal(b.find((v) => v.digest === 'bu')?.decision, 'expire', 'untagged artifacts are deleted')
  })

  t.test('example 2: retain pulled within 7 days', async (t) => {
    const set = harbor([{ select: tagged, keep: { within: { age: '7d', by: 'pull' } } }])
    t.same(expired(repoA(), set), ['u1', 'u2'], 'all 100 tagged retained in A; untagged deleted')
    t.equal(expired(repoB(), set).length, 7, 'nothing retained in B–E')
  })

  t.test('example 3: the same with "untagged artifacts" checked', async (t) => {
    const set = harbor([
      { select: { tagStatus: 'any', include: ['**'] }, keep: { within: { age: '7d', by: 'pull' } } },
      { select: { tagStatus: 'untagged' }, keep: { within: { age: '7d', by: 'pull' } } },
    ])
    t.same(expired(repoA(), set), [], 'every artifact of A retained')
    t.equal(expired(repoB(), set).length, 7)
  })

  t.test('example 4: two rules are OR-ed', async (t) => {
    const set = harbor([
      { select: tagged, keep: { within: { age: '7d', by: 'pull' } } },
      { select: tagged, keep: { mostRecent: { count: 10, by: 'pull' } } },
    ])
    t.same(expired(repoA(), set), ['u1', 'u2'])
    t.same(expired(repoB(), set), ['bu'], 'all 6 tagged retained in B–E')
  })

  t.test('example 5: starts with 2, or ends with -prod → 8 tags retained', async (t) => {
    const names = ['2.1', '2.2', '3.1', '4.4'].flatMap((v) =>
      ['prod', 'rc', 'release'].map((kind) => `${v}-your_repo-${kind}`),
    )
    const repo = names.map((tag, i) => artifact(tag, [tag], { pushed: 20 - i }))
    const set = harbor([
      { select: { include: ['2*'] }, keep: { mostRecent: { count: 10, by: 'push' } } },
      { select: { include: ['*-prod'] }, keep: { mostRecent: { count: 10, by: 'push' } } },
    ])
    t.same(expired(repo, set), [
      '3.1-your_repo-rc',
      '3.1-your_repo-release',
      '4.4-your_repo-rc',
      '4.4-your_repo-release',
    ])
  })

  t.test('shared digest: retaining two of four tags of one digest retains all four', async (t) => {
    const repo = [
      artifact('sha', ['harbor-1.8', 'harbor-release', 'harbor-nightly', 'harbor-latest'], { pushed: 1 }),
    ]
    const set = harbor([
      { select: { include: ['harbor-*'] }, keep: { mostRecent: { count: 2, by: 'push' } } },
    ])
    t.same(expired(repo, set), [])
  })
})

/**
 * GitLab's cleanup policy, in its documented order: exclude `latest`, keep only tags matching
 * name_regex, exclude name_regex_keep, keep the newest keep_n by created date, keep tags newer than
 * older_than, delete the rest. Translated: keep rules for latest, the keep regex and keep_n, one
 * expire rule for the delete regex, default keep.
 */
function gitlab(p: { nameRegex: string; keepRegex?: string; keepN?: number; olderThan?: string }): RuleSet {
  const candidates = {
    include: [`/${p.nameRegex}/`],
    exclude: ['latest', ...(p.keepRegex ? [`/${p.keepRegex}/`] : [])],
  }
  const rules: RetentionRule[] = [
    { description: 'latest', select: { include: ['latest'] }, keep: { always: true } },
  ]
  if (p.keepRegex)
    rules.push({
      description: 'keep regex',
      select: { include: [`/${p.keepRegex}/`] },
      keep: { always: true },
    })
  if (p.keepN)
    rules.push({
      description: 'keep_n',
      select: candidates,
      keep: { mostRecent: { count: p.keepN, by: 'created' } },
    })
  rules.push({
    description: 'delete',
    select: candidates,
    expire: { olderThan: { age: p.olderThan ?? '0m', by: 'created' } },
  })
  return { rules, default: 'keep' }
}

t.test('GitLab cleanup policy examples', async (t) => {
  const repo = () => [
    artifact('latest', ['latest'], { pushed: 100, created: 100 }),
    artifact('main', ['main'], { pushed: 100, created: 100 }),
    artifact('v1', ['v1.0.0'], { pushed: 60, created: 60 }),
    artifact('v2', ['v2.0.0'], { pushed: 30, created: 30 }),
    artifact('v3', ['v3.0.0'], { pushed: 10, created: 10 }),
    artifact('v4', ['v4.0.0'], { pushed: 3, created: 3 }),
    artifact('rel', ['release-7'], { pushed: 50, created: 50 }),
  ]

  t.test('remove all tags (`.*`), keep 1: only latest and the newest survive', async (t) => {
    t.same(expired(repo(), gitlab({ nameRegex: '.*', keepN: 1 })), ['main', 'rel', 'v1', 'v2', 'v3'])
  })

  t.test('remove tags starting with v (`v.+`), older than 14 days, keep 1', async (t) => {
    t.same(expired(repo(), gitlab({ nameRegex: 'v.+', keepN: 1, olderThan: '14d' })), ['v1', 'v2'])
  })

  t.test('remove `(?:v.+|main|release.*)`, keep `v1\\..*`, older than 7 days', async (t) => {
    t.same(
      expired(repo(), gitlab({ nameRegex: '(?:v.+|main|release.*)', keepRegex: 'v1\\..*', olderThan: '7d' })),
      ['main', 'rel', 'v2', 'v3'],
    )
  })

  t.test('latest is never removed, even by a policy matching everything', async (t) => {
    const only = [artifact('latest', ['latest'], { pushed: 400, created: 400 })]
    t.same(expired(only, gitlab({ nameRegex: '.*' })), [])
  })

  t.test('two tags sharing a digest: the newer one kept keeps the digest', async (t) => {
    const shared = [
      artifact('d', ['feature-a', 'v9.0.0'], { pushed: 40, created: 40 }),
      artifact('e', ['feature-b'], { pushed: 40, created: 40 }),
    ]
    t.same(expired(shared, gitlab({ nameRegex: 'feature-.*', keepRegex: 'v.+' })), ['e'])
  })
})

t.test('safety: shields, indexes and the untagged', async (t) => {
  t.test('a protected or held tag keeps its artifact whatever the rules say', async (t) => {
    const repo = [artifact('p', ['prod'], { pushed: 400 }), artifact('x', ['x'], { pushed: 400 })]
    repo[0]!.shielded.push({ tag: 'prod', reason: 'prod is immutable (protections[0])' })
    const [p, x] = evaluateRules(repo, { rules: [], default: 'expire' }, NOW)
    t.equal(p?.decision, 'keep')
    t.equal(p?.decidedBy, 'protection')
    t.equal(x?.decision, 'expire')
  })

  t.test('a kept index keeps its children, tagged or not', async (t) => {
    const repo = [
      artifact('idx', ['v1'], { pushed: 1, kind: 'index', children: ['amd64', 'arm64'] }),
      artifact('amd64', ['amd64-only'], { pushed: 100 }),
    ]
    const set: RuleSet = {
      rules: [{ select: { include: ['v*'] }, keep: { always: true } }],
      default: 'expire',
    }
    const verdicts = evaluateRules(repo, set, NOW)
    t.same(
      verdicts.map((v) => v.decision),
      ['keep', 'keep'],
    )
    t.match(verdicts[1]?.fact, /child of kept index idx/)
  })

  t.test('an expiring index whose child is kept is kept too', async (t) => {
    const repo = [
      artifact('idx', ['old'], { pushed: 100, kind: 'index', children: ['amd64'] }),
      artifact('amd64', ['pinned'], { pushed: 100 }),
    ]
    const set: RuleSet = {
      rules: [{ select: { include: ['pinned'] }, keep: { always: true } }],
      default: 'expire',
    }
    const verdicts = evaluateRules(repo, set, NOW)
    t.same(
      verdicts.map((v) => v.decision),
      ['keep', 'keep'],
    )
    t.match(verdicts[0]?.fact, /its child amd64 is kept/)
  })

  t.test('every verdict names the rule and the fact that decided it', async (t) => {
    const repo = [artifact('a', ['feature-x'], { pushed: 20 }), artifact('b', ['feature-y'], { pushed: 2 })]
    const set: RuleSet = {
      rules: [
        {
          description: 'old features',
          select: { include: ['feature-*'] },
          expire: { olderThan: { age: '14d', by: 'push' } },
        },
      ],
      default: 'keep',
    }
    const [a, b] = evaluateRules(repo, set, NOW)
    t.equal(a?.decidedBy, 'rules[0] (old features)')
    t.equal(a?.fact, 'pushed 20d ago (events), expire older than 14d')
    t.equal(b?.fact, 'spared: pushed 2d ago (events), expire older than 14d')
  })
})

t.test('rule set problems and durations', async (t) => {
  t.equal(parseDuration('14d'), 14 * DAY)
  t.equal(parseDuration('2w'), 14 * DAY)
  t.equal(parseDuration('90'), undefined)
  const byCreated: RuleSet = {
    rules: [{ keep: { mostRecent: { count: 1, by: 'created' } } }],
    default: 'keep',
  }
  const described: RuleSet = {
    rules: [{ description: 'created', select: { include: ['created'] }, keep: { always: true } }],
    default: 'keep',
  }
  t.ok(judgesBy(byCreated, 'created'), 'a condition by created time needs image configs')
  t.notOk(judgesBy(described, 'created'), 'the word in a description or pattern does not')
  t.same(ruleSetProblems({ rules: [{ select: {} }], default: 'keep' }), [
    'rules[0]: give exactly one of keep or expire',
  ])
  t.match(
    ruleSetProblems({ rules: [{ expire: { olderThan: { age: 'soon', by: 'push' } } }], default: 'keep' }),
    [/age soon is not a duration/],
  )
  t.match(
    ruleSetProblems({ rules: [{ select: { include: ['/(a/'] }, keep: { always: true } }], default: 'keep' }),
    [/tag pattern/],
  )
  t.match(
    ruleSetProblems({
      rules: [{ select: { tagStatus: 'untagged', include: ['x'] }, keep: { always: true } }],
      default: 'keep',
    }),
    [/untagged selection cannot have tag patterns/],
  )
})
