import t from 'tap'
import { type LegalHold, type ProtectionTarget, protectionVerdict } from '../../src/governance/protection.js'
import { governance } from './fixtures.js'

const config = governance({
  protections: [
    { repositories: '**', tags: ['latest'], level: 'immutable', reason: 'deployments pull latest' },
    { registry: 'prod', repositories: 'payments/**', tags: ['v*.*.*'], level: 'immutable' },
    { repositories: '**', tags: ['prod-*'], level: 'admin-only' },
    { repositories: 'platform/**', tags: ['/v\\d+\\.\\d+\\.\\d+/'], level: 'admin-only' },
    { registry: 'prod', repositories: 'archive/**', tags: ['*'], level: 'admin-only' },
  ],
})

const NOW = new Date('2025-06-01T12:00:00Z')
const DIGEST = `sha256:${'a'.repeat(64)}`
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`

t.test('protection verdicts by registry, repository and tag pattern', async (t) => {
  const cases: Array<[target: Partial<ProtectionTarget>, level: string, rule?: RegExp]> = [
    [{ repository: 'payments/api', tag: 'latest' }, 'immutable', /protections\[0\].*deployments pull latest/],
    [{ repository: 'anything/at/all', tag: 'latest' }, 'immutable'],
    [{ repository: 'payments/api', tag: 'latest-2' }, 'none'],
    [{ registry: 'prod', repository: 'payments/api', tag: 'v1.2.3' }, 'immutable', /protections\[1\]/],
    [{ registry: 'staging', repository: 'payments/api', tag: 'v1.2.3' }, 'none'],
    [{ registry: 'prod', repository: 'billing/api', tag: 'v1.2.3' }, 'none'],
    [{ repository: 'billing/api', tag: 'prod-2025-01-01' }, 'admin-only', /protections\[2\]/],
    [{ repository: 'billing/api', tag: 'preprod-1' }, 'none'],
    [{ repository: 'platform/base', tag: 'v10.0.1' }, 'admin-only', /protections\[3\]/],
    [{ repository: 'platform/base', tag: 'v10.0.1-rc1' }, 'none'],
    [{ repository: 'platform/base', tag: 'dev-abc' }, 'none'],
    [{ registry: 'prod', repository: 'archive/2019', tag: 'whatever' }, 'admin-only', /protections\[4\]/],
    // Untagged manifests are the empty tag: only patterns that match every tag cover them.
    [{ registry: 'prod', repository: 'archive/2019' }, 'admin-only'],
    [{ repository: 'payments/api' }, 'none'],
    // immutable beats admin-only whatever the order of the rules.
    [{ registry: 'prod', repository: 'archive/2019', tag: 'latest' }, 'immutable', /protections\[0\]/],
  ]
  for (const [partial, level, rule] of cases) {
    const target = { registry: 'main', digest: DIGEST, ...partial } as ProtectionTarget
    const verdict = protectionVerdict(config, [], target, NOW)
    t.equal(
      verdict.level,
      level,
      `${target.registry} ${target.repository}:${target.tag ?? '(untagged)'} is ${level}`,
    )
    if (rule) t.match(verdict.rule, rule, 'names the rule')
    if (level === 'none') t.equal(verdict.rule, undefined)
  }
})

t.test('an active legal hold overrides every policy; an expired one does not', async (t) => {
  const holds: LegalHold[] = [
    {
      id: 'LH-1',
      registry: '*',
      repository: 'billing/**',
      until: new Date('2025-07-01T00:00:00Z'),
      reason: 'audit 2025',
    },
    {
      id: 'LH-2',
      registry: 'prod',
      repository: 'payments/api',
      digest: DIGEST,
      until: new Date('2025-12-31T00:00:00Z'),
    },
    { id: 'LH-old', registry: '*', repository: 'shipping/**', until: new Date('2025-06-01T12:00:00Z') },
  ]
  const cases: Array<[target: Partial<ProtectionTarget>, level: string, rule?: RegExp]> = [
    [
      { repository: 'billing/api', tag: 'dev-1' },
      'held',
      /legal hold LH-1 until 2025-07-01T00:00:00.000Z: audit 2025/,
    ],
    [{ repository: 'billing/api', tag: 'latest' }, 'held', /LH-1/],
    [{ repository: 'billing/api' }, 'held'],
    [{ registry: 'prod', repository: 'payments/api', tag: 'v1.2.3' }, 'held', /LH-2/],
    [{ registry: 'prod', repository: 'payments/api', tag: 'v1.2.3', digest: OTHER_DIGEST }, 'immutable'],
    [{ registry: 'main', repository: 'payments/api', tag: 'dev' }, 'none'],
    [{ repository: 'shipping/api', tag: 'dev' }, 'none'], // until == now: expired
  ]
  for (const [partial, level, rule] of cases) {
    const target = { registry: 'main', digest: DIGEST, ...partial } as ProtectionTarget
    const verdict = protectionVerdict(config, holds, target, NOW)
    t.equal(
      verdict.level,
      level,
      `${target.registry} ${target.repository}:${target.tag ?? '(untagged)'} is ${level}`,
    )
    if (rule) t.match(verdict.rule, rule, 'names the hold')
  }
  const later = new Date('2025-07-02T00:00:00Z')
  t.equal(
    protectionVerdict(
      config,
      holds,
      { registry: 'main', repository: 'billing/api', tag: 'dev', digest: DIGEST },
      later,
    ).level,
    'none',
    'the same hold no longer applies once it has run out',
  )
})
