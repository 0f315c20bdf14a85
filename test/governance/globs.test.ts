import t, { type Test } from 'tap'
import {
  compileGlob,
  compileTagPattern,
  globProblem,
  matchesGlob,
  matchesTagPattern,
  PatternError,
  tagPatternProblem,
} from '../../src/governance/globs.js'

type Case = [pattern: string, input: string, matches: boolean]

function table(t: Test, match: (pattern: string, input: string) => boolean, cases: Case[]) {
  for (const [pattern, input, expected] of cases) {
    t.equal(match(pattern, input), expected, `${pattern} ${expected ? 'matches' : 'does not match'} ${input}`)
  }
}

t.test('repository globs: * stays within one segment', async (t) => {
  table(t, matchesGlob, [
    ['*/api', 'payments/api', true],
    ['*/api', 'api', false],
    ['*/api', 'payments/eu/api', false],
    ['payments/*', 'payments/api', true],
    ['payments/*', 'payments/eu/api', false],
    ['payments/*', 'payments', false],
    ['pay*', 'payments', true],
    ['pay*', 'payments/api', false],
    ['*', 'api', true],
    ['*', 'team/api', false],
    ['*-svc', 'billing-svc', true],
    ['*-svc', 'billing-svc-old', false],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXb/c', false],
    ['a**b', 'aXYb', true],
    ['a**b', 'aX/Yb', false],
  ])
})

t.test('repository globs: ** spans any number of segments, including none, at either end', async (t) => {
  table(t, matchesGlob, [
    ['**', 'api', true],
    ['**', 'a/b/c/d', true],
    ['payments/**', 'payments', true],
    ['payments/**', 'payments/api', true],
    ['payments/**', 'payments/eu/api/v2', true],
    ['payments/**', 'paymentsx', false],
    ['payments/**', 'payments-old/api', false],
    ['payments/**', 'team/payments/api', false],
    ['**/api', 'api', true],
    ['**/api', 'payments/api', true],
    ['**/api', 'a/b/c/api', true],
    ['**/api', 'payments/api2', false],
    ['**/api', 'myapi', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/b', true],
    ['a/**/b', 'a/x/y/z/b', true],
    ['a/**/b', 'a/xb', false],
    ['a/**/b', 'ab', false],
    ['**/cache/**', 'cache', true],
    ['**/cache/**', 'ci/cache/layers', true],
    ['**/cache/**', 'ci/caches', false],
  ])
})

t.test('repository globs: ?, classes, braces and escapes', async (t) => {
  table(t, matchesGlob, [
    ['api-v?', 'api-v2', true],
    ['api-v?', 'api-v10', false],
    ['a?b', 'a/b', false],
    ['api-v[0-9]', 'api-v7', true],
    ['api-v[0-9]', 'api-vx', false],
    ['api-v[!0-9]', 'api-vx', true],
    ['api-v[!0-9]', 'api-v7', false],
    ['a[/]b', 'a/b', false],
    ['[]]x', ']x', true],
    ['{payments,billing}/**', 'billing/api', true],
    ['{payments,billing}/**', 'payments', true],
    ['{payments,billing}/**', 'shipping/api', false],
    ['svc{,-canary}', 'svc', true],
    ['svc{,-canary}', 'svc-canary', true],
    ['{a,b{c,d}}', 'bd', true],
    ['{a/**,z}', 'a/b/c', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a.b', 'axb', false],
    ['a+b', 'a+b', true],
    ['(x)', '(x)', true],
    ['x$', 'x$', true],
  ])
})

t.test('a glob must match the whole input and is case-sensitive', async (t) => {
  table(t, matchesGlob, [
    ['api', 'api', true],
    ['api', 'my-api', false],
    ['api', 'api-2', false],
    ['api', 'API', false],
  ])
})

t.test('tag patterns: globs (latest, prod-*, semver-ish v*.*.*)', async (t) => {
  table(t, matchesTagPattern, [
    ['latest', 'latest', true],
    ['latest', 'latest-1', false],
    ['prod-*', 'prod-2024-01-01', true],
    ['prod-*', 'preprod-1', false],
    ['prod-*', 'prod', false],
    ['v*.*.*', 'v1.2.3', true],
    ['v*.*.*', 'v1.2', false],
    ['v*.*.*', 'v1.2.3-rc.1', true],
    ['*', 'anything', true],
    ['*', '', true],
    ['prod-*', '', false],
  ])
})

t.test('tag patterns: /regex/ is anchored and supports the RE2-style subset', async (t) => {
  table(t, matchesTagPattern, [
    ['/v\\d+\\.\\d+\\.\\d+/', 'v1.22.333', true],
    ['/v\\d+\\.\\d+\\.\\d+/', 'v1.22.333-rc1', false],
    ['/v\\d+\\.\\d+\\.\\d+/', 'xv1.2.3', false],
    ['/^v\\d+$/', 'v12', true],
    ['/^v\\d+$/', 'v12a', false],
    ['/rc/', 'v1-rc1', false],
    ['/.*rc.*/', 'v1-rc1', true],
    ['/(dev|staging)-[0-9a-f]{7,40}/', 'dev-abcdef1', true],
    ['/(dev|staging)-[0-9a-f]{7,40}/', 'staging-abc', false],
    ['/(?:a|b)+/', 'abba', true],
    ['/(?<major>\\d+)\\.x/', '3.x', true],
    ['/[^-]+/', 'abc', true],
    ['/[^-]+/', 'a-c', false],
    ['/\\w+/', 'A_9', true],
    ['/\\W/', '-', true],
    ['/a{2}/', 'aa', true],
    ['/a{2}/', 'aaa', false],
    ['/a{2,}/', 'aaaa', true],
    ['/a{2,3}/', 'aaaa', false],
    ['/a*?b/', 'aab', true],
    ['/x{/', 'x{', true],
    ['/a|/', '', true],
    ['/\\x41\\u0042/', 'AB', true],
    ['/[\\d.]+/', '1.2', true],
    ['/[a\\-z]+/', 'a-z', true],
    ['/[a\\-z]+/', 'b', false],
    ['/a^b/', 'ab', false],
    ['/a$b/', 'ab', false],
  ])
})

t.test('tag regexes refuse features that could explode or that the subset lacks', async (t) => {
  const refused: Array<[pattern: string, problem: RegExp]> = [
    ['/(a)\\1/', /backreferences/],
    ['/(?<n>a)\\k<n>/', /backreferences/],
    ['/a(?=b)/', /lookaheads/],
    ['/a(?!b)/', /lookaheads/],
    ['/(?<=a)b/', /lookbehinds/],
    ['/(?<!a)b/', /lookbehinds/],
    ['/\\bword/', /word boundaries/],
    ['/(?i)abc/', /unsupported group/],
    ['/\\p{L}/', /Unicode property/],
    ['/a**/', /quantifier cannot follow/],
    ['/a*+/', /possessive/],
    ['/*a/', /nothing to repeat/],
    ['/(a/', /missing \)/],
    ['/a)/', /unmatched \)/],
    ['/[a/', /unterminated \[/],
    ['/[]/', /empty character class/],
    ['/[z-a]/', /reversed/],
    ['/a{3,2}/', /reversed/],
    ['/a{1001}/', /above 1000/],
    ['/[[:alpha:]]/', /POSIX/],
    ['/\\q/', /unknown escape/],
    ['/^*/', /cannot be repeated/],
    ['/abc/i', /no flags/],
    ['/abc', /no flags/],
    ['/', /no flags/],
    ['/((a{1000}){1000}){1000}/', /too complex/],
  ]
  for (const [pattern, problem] of refused) {
    t.match(tagPatternProblem(pattern), problem, `${pattern} is refused`)
  }
  t.throws(() => compileTagPattern('/(a)\\1/'), PatternError)
})

t.test('glob syntax errors are reported, not matched literally', async (t) => {
  const refused: Array<[pattern: string, problem: RegExp]> = [
    ['[abc', /unterminated \[/],
    ['{a,b', /unterminated \{/],
    ['a\\', /lone \\/],
    ['[z-a]', /reversed/],
    ['', /empty/],
    ['x'.repeat(1001), /longer than 1000/],
  ]
  for (const [pattern, problem] of refused) {
    t.match(globProblem(pattern), problem, `${pattern.slice(0, 20)} is refused`)
  }
  t.equal(globProblem('payments/**'), undefined, 'a good glob has no problem')
  t.equal(tagPatternProblem('/v\\d+/'), undefined, 'a good regex has no problem')
})

t.test('patterns that make a backtracking engine explode match in linear time', async (t) => {
  const cases: Array<[compile: typeof compileGlob, pattern: string, input: string]> = [
    [compileTagPattern, '/(a+)+b/', `${'a'.repeat(128)}c`],
    [compileTagPattern, '/(a|a)*b/', `${'a'.repeat(128)}c`],
    [compileTagPattern, '/(a|aa)*b/', `${'a'.repeat(128)}c`],
    [compileTagPattern, '/.*.*.*.*.*.*.*.*x/', 'a'.repeat(128)],
    [compileTagPattern, '/(\\w+\\d*)*-/', `${'a1'.repeat(64)}`],
    [compileGlob, '*a*a*a*a*a*a*a*a*b', 'a'.repeat(128)],
    [compileGlob, '**/**/**/**/**/**/x', 'a/'.repeat(200)],
  ]
  for (const [compile, pattern, input] of cases) {
    const matcher = compile(pattern)
    const started = performance.now()
    t.equal(matcher.test(input), false, `${pattern} does not match`)
    // Backtracking on these inputs would not finish in a lifetime; the bound is loose enough for a
    // loaded machine and still decisive.
    t.ok(performance.now() - started < 5000, `${pattern} answers at once, not after exploring every split`)
  }
})

t.test('a compiled pattern gives the same answers on repeated use (its DFA cache is sound)', async (t) => {
  const matcher = compileGlob('{payments,billing}/**/api-v[0-9]')
  const inputs = [
    'payments/api-v1',
    'billing/eu/api-v2',
    'billing/api-vx',
    'shipping/api-v1',
    'payments/a/b/api-v9',
  ]
  const first = inputs.map((input) => matcher.test(input))
  t.same(first, [true, true, false, false, true])
  for (let round = 0; round < 3; round++) {
    t.same(
      inputs.map((input) => matcher.test(input)),
      first,
      `round ${round}`,
    )
  }
  t.equal(matcher.kind, 'glob')
  t.equal(compileTagPattern('/x/').kind, 'regex')
  t.equal(compileTagPattern('x').kind, 'glob')
})
