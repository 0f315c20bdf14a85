import t from 'tap'
import { cutList } from '../../src/chatops/blocks.js'
import { parseCommand, tokenize } from '../../src/chatops/commands.js'
import { slackSignature, verifySlackSignature } from '../../src/chatops/signature.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import type { ItemUsage } from '../../src/deletions/usage-check.js'

t.test(
  'quoted parts stay whole, typographic quotes included; a quote inside a word is a letter',
  async (t) => {
    t.same(tokenize('delete r a:b --reason "two words"'), ['delete', 'r', 'a:b', '--reason', 'two words'])
    t.same(tokenize('--reason “smart quotes here”'), ['--reason', 'smart quotes here'])
    t.same(tokenize("reject id don't"), ['reject', 'id', "don't"])
    t.same(tokenize('--reason ""'), ['--reason', ''])
    t.match(tokenize('--reason "open'), { problem: /never closed/ })
  },
)

t.test('delete parses several targets, digests, ticket, --untag and --dry-run', async (t) => {
  const parsed = parseCommand(
    'delete local a/b:v1 a/b:v2 c@sha256:abc --reason "clean up" --ticket OPS-1 --dry-run',
  )
  t.same(parsed, {
    ok: true,
    command: {
      name: 'delete',
      registry: 'local',
      verb: 'delete-manifest',
      targets: [
        { repository: 'a/b', tag: 'v1' },
        { repository: 'a/b', tag: 'v2' },
        { repository: 'c', digest: 'sha256:abc' },
      ],
      reason: 'clean up',
      dryRun: true,
      ticket: 'OPS-1',
    },
  })
  t.match(parseCommand('delete local a:v1 --untag --reason x'), { ok: true, command: { verb: 'untag' } })
  t.match(parseCommand('delete local a:v1 --reason "  "'), { ok: false, problem: /--reason/ })
  t.match(parseCommand('delete local a:v1 --reason x --force'), {
    ok: false,
    problem: /unknown option --force/,
  })
  t.match(parseCommand('delete local a: --reason x'), { ok: false, problem: /not repository:tag/ })
})

t.test('ids, comments and the empty command', async (t) => {
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e'
  t.same(parseCommand(`reject ${id.toUpperCase()} not   now`), {
    ok: true,
    command: { name: 'reject', id, comment: 'not now' },
  })
  t.same(parseCommand(''), { ok: true, command: { name: 'help' } })
  t.match(parseCommand(`status ${id} extra`), { ok: false, usage: '/regent status <id>' })
  t.match(parseCommand('tags r repo p extra'), { ok: false })
})

t.test('long lists are cut with a count', async (t) => {
  const lines = Array.from({ length: 25 }, (_, i) => `line ${i}`)
  const cut = cutList(lines)
  t.equal(cut.length, 11)
  t.equal(cut.at(-1), '… and 15 more')
  t.same(cutList(lines.slice(0, 3)), lines.slice(0, 3))
})

t.test('signatures: Slack\u2019s documented example verifies', async (t) => {
  // The worked example of https://api.slack.com/authentication/verifying-requests-from-slack
  const secret = '8f742231b10e8888abcd99yyyzzz85a5'
  const timestamp = '1531420618'
  const body =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c'
  const expected = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503'
  t.equal(slackSignature(secret, timestamp, body), expected)
  t.same(verifySlackSignature(secret, timestamp, expected, body, 1531420618_000), { ok: true })
  t.same(verifySlackSignature(secret, timestamp, expected, body, (1531420618 + 301) * 1000), {
    ok: false,
    reason: 'stale-timestamp',
  })
  t.same(verifySlackSignature(secret, timestamp, `${expected.slice(0, -1)}0`, body, 1531420618_000), {
    ok: false,
    reason: 'bad-signature',
  })
  t.same(verifySlackSignature(secret, 'abc', expected, body), { ok: false, reason: 'stale-timestamp' })
})

t.test('a configured Slack user needs a Slack user id or an e-mail', async (t) => {
  try {
    loadConfig({}, { chatops: { slack: { users: [{ subject: 'x', teams: [], roles: [] }] } } })
    t.fail('expected a ConfigError')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.match((err as ConfigError).problems.join('\n'), /chatops\.slack\.users\[0\].*slackUserId or email/)
  }
  const config = loadConfig(
    { REGENT_SLACK_SIGNING_SECRET: 'abcdefgh12345678', REGENT_SLACK_BOT_TOKEN: 'xoxb-12345678' },
    { chatops: { slack: { users: [{ email: 'a@b.c', subject: 'a' }] } } },
  )
  t.equal(config.chatops.slack.signingSecret, 'abcdefgh12345678')
  t.equal(config.chatops.slack.botToken, 'xoxb-12345678')
  t.same(config.chatops.slack.responseUrlOrigins, ['https://hooks.slack.com'])
})

t.test('a plan message lists in-use items first, saying where they run', async (t) => {
  const { dryRunMessage } = await import('../../src/chatops/blocks.js')
  const item = (tag: string, inUse?: ItemUsage) => ({
    repository: 'payments/api',
    tag,
    digest: `sha256:${tag.padEnd(64, '0')}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    action: 'delete-manifest' as const,
    vanishingTags: [tag],
    bytes: 0,
    protection: { level: 'none' as const },
    ...(inUse ? { inUse } : {}),
  })
  const message = dryRunMessage({
    registry: 'local',
    verb: 'delete-manifest',
    items: [
      item('a1'),
      item('b2', {
        status: 'in-use',
        reason: 'running in prod/payments deploy/api, 3 pods',
        policy: 'warn',
        where: [],
      }),
    ],
    problems: [],
    warnings: [],
    bytesFreed: 0,
    repositories: [],
    approvals: { count: 0, from: [], adminCount: 0, reasons: [] },
    hash: '0'.repeat(64),
  })
  const text = JSON.stringify(message.blocks)
  t.match(text, /b2.*in use: running in prod\/payments deploy\/api, 3 pods/)
  t.ok(text.indexOf('b2') < text.indexOf('a1'), 'the in-use item comes first')
})
