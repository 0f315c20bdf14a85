import t, { type Test } from 'tap'
import { build } from '../helper.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { admin, auditEvents, command, NOBODY, RITA, send, sign, signed, slackConfig } from './support.js'

async function setup(t: Test) {
  const capture = await startCaptureServer()
  t.teardown(capture.stop)
  const app = await build(t, { config: { chatops: slackConfig(capture.url) } })
  return { app, capture }
}

const helpForm = { team_id: 'T0TEAM', user_id: RITA, command: '/regent', text: 'help', response_url: '' }

t.test('a correctly signed help command answers with the command list', async (t) => {
  const { app } = await setup(t)
  const res = await command(app, RITA, 'help')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.response_type, 'ephemeral')
  t.match(JSON.stringify(body.blocks), /delete <registry> <repository>:<tag>/)
  t.match(JSON.stringify(body.blocks), /deletes the \*manifest\*/, 'help says what delete repo:tag means')
  const accepted = (await auditEvents(app)).filter((e) => e.action === 'chatops.slack.command')
  t.equal(accepted.length, 1)
  t.match(accepted[0], {
    actorSubject: 'rita',
    channel: 'slack',
    details: { slackUserId: RITA, command: 'help' },
  })
})

t.test(
  'bad signature, old timestamp and a replayed body are refused with 401 and audited as one summary',
  async (t) => {
    const { app } = await setup(t)

    const forged = signed(helpForm, { secret: 'not-the-secret-at-all' })
    const bad = await send(app, 'commands', forged)
    t.equal(bad.statusCode, 401)
    t.equal(bad.json().error.code, 'REGENT_SLACK_SIGNATURE_INVALID')
    t.notMatch(bad.body, /test-slack-signing-secret/, 'the answer holds nothing of the secret')

    // A signature over a body that was then changed.
    const good = signed(helpForm)
    const tampered = await send(app, 'commands', { ...good, body: good.body.replace('help', 'registries') })
    t.equal(tampered.statusCode, 401)

    const unsigned = await send(app, 'commands', { body: good.body, timestamp: good.timestamp })
    t.equal(unsigned.statusCode, 401)

    const old = signed(helpForm, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 })
    const stale = await send(app, 'commands', old)
    t.equal(stale.statusCode, 401)
    t.equal(stale.json().error.code, 'REGENT_SLACK_TIMESTAMP_STALE')

    const future = signed(helpForm, { timestamp: Math.floor(Date.now() / 1000) + 6 * 60 })
    t.equal((await send(app, 'commands', future)).statusCode, 401, 'a timestamp from the future too')

    const first = await send(app, 'commands', good)
    t.equal(first.statusCode, 200, 'the genuine request is accepted once')
    const replay = await send(app, 'commands', good)
    t.equal(replay.statusCode, 401)
    t.equal(replay.json().error.code, 'REGENT_SLACK_REPLAY')

    t.same(
      (await auditEvents(app)).filter((e) => e.action === 'chatops.slack.refused'),
      [],
      'nothing is written per refused request',
    )
    await app.refusals.flush()
    const refusals = (await auditEvents(app)).filter((e) => e.action === 'chatops.slack.refused')
    t.equal(refusals.length, 1, 'one summary for the source')
    t.same(refusals[0]?.details.reasons, {
      'commands: bad-signature': 3,
      'commands: replay': 1,
      'commands: stale-timestamp': 2,
    })
    for (const e of refusals) {
      t.equal(e.channel, 'slack')
      t.equal(e.outcome, 'refused')
      t.notMatch(JSON.stringify(e), /test-slack-signing-secret/)
    }
    t.equal((await auditEvents(app)).filter((e) => e.action === 'chatops.slack.command').length, 1)
  },
)

t.test('interactions are verified the same way', async (t) => {
  const { app } = await setup(t)
  const form = { payload: JSON.stringify({ type: 'block_actions', user: { id: RITA }, actions: [] }) }
  const forged = await send(app, 'interactions', signed(form, { secret: 'wrong-secret-123' }))
  t.equal(forged.statusCode, 401)
  const ok = await send(app, 'interactions', signed(form))
  t.equal(ok.statusCode, 200)
  await app.refusals.flush()
  const refused = (await auditEvents(app)).filter((e) => e.action === 'chatops.slack.refused')
  t.match(refused, [{ details: { count: 1, reasons: { 'interactions: bad-signature': 1 } } }])
})

t.test('an unmapped Slack user gets a clear answer and is audited', async (t) => {
  const { app } = await setup(t)
  const res = await command(app, NOBODY, 'registries')
  t.equal(res.statusCode, 200)
  t.match(res.json().text, /not linked to a Regent user/)
  const events = await auditEvents(app)
  t.match(
    events.filter((e) => e.action === 'chatops.slack.unmapped_user'),
    [
      {
        actorSubject: `slack:${NOBODY}`,
        channel: 'slack',
        outcome: 'refused',
        details: { slackUserId: NOBODY },
      },
    ],
  )
})

t.test('bad syntax gets an ephemeral usage message with 200', async (t) => {
  const { app } = await setup(t)
  for (const [text, pattern] of [
    ['delete local payments/api:v1', /--reason/],
    ['delete local --reason "x"', /at least one repository:tag/],
    ['delete local payments/api --reason x', /not repository:tag/],
    ['delete local payments/api:v1 --reason "never closed', /never closed/],
    ['approve 1234', /not a request id/],
    ['frobnicate', /unknown command/],
    ['tags local', /registry and a repository/],
  ] as const) {
    const res = await command(app, RITA, text)
    t.equal(res.statusCode, 200, text)
    t.equal(res.json().response_type, 'ephemeral', text)
    t.match(res.json().text, pattern, text)
  }
})

t.test('a request signed for another content type or sent as JSON is refused', async (t) => {
  const { app } = await setup(t)
  const body = JSON.stringify(helpForm)
  const ts = String(Math.floor(Date.now() / 1000))
  const res = await app.inject({
    method: 'POST',
    url: '/v1/chatops/slack/commands',
    headers: {
      'content-type': 'application/json',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': sign(body, ts),
    },
    payload: body,
  })
  t.equal(res.statusCode, 415)
})

t.test('without a signing secret the Slack routes answer 404 with a stable code', async (t) => {
  const app = await build(t)
  const res = await command(app, RITA, 'help')
  t.equal(res.statusCode, 404)
  t.equal(res.json().error.code, 'REGENT_SLACK_NOT_CONFIGURED')
})

t.test('the urlencoded parser stays inside the chatops routes', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'registry=local',
  })
  t.equal(res.statusCode, 415)
})

t.test('a Slack user mapped by e-mail is found through users.info with the bot token', async (t) => {
  const slackApi = await startCaptureServer((req) =>
    req.url.includes('user=U0EVE')
      ? { body: JSON.stringify({ ok: true, user: { id: 'U0EVE', profile: { email: 'Eve@Example.com' } } }) }
      : { body: JSON.stringify({ ok: false, error: 'user_not_found' }) },
  )
  t.teardown(slackApi.stop)
  const app = await build(t, {
    config: {
      chatops: slackConfig(slackApi.url, {
        botToken: 'xoxb-test-bot-token',
        apiUrl: slackApi.url,
        users: [{ email: 'eve@example.com', subject: 'eve', teams: ['payments'], roles: ['viewer'] }],
      }),
    },
  })
  const first = await command(app, 'U0EVE', 'help')
  t.match(first.json().text, /Regent commands/)
  await command(app, 'U0EVE', 'help')
  const lookups = slackApi.requests.filter((r) => r.url.startsWith('/users.info'))
  t.equal(lookups.length, 1, 'the answer is cached')
  t.equal(lookups[0]!.headers.authorization, 'Bearer xoxb-test-bot-token')
  const stranger = await command(app, 'U0MALLORY', 'help')
  t.match(stranger.json().text, /not linked/)
  const events = await auditEvents(app)
  t.equal(events.filter((e) => e.action === 'chatops.slack.command' && e.actorSubject === 'eve').length, 2)
  t.match(
    events.filter((e) => e.action === 'chatops.slack.unmapped_user'),
    [{ actorSubject: 'slack:U0MALLORY' }],
  )
  t.notMatch(JSON.stringify(events), /xoxb-test-bot-token/, 'the bot token is never audited')
})

t.test('Slack checking the certificate gets an empty 200, and only when signed', async (t) => {
  const { app } = await setup(t)
  const check = await send(app, 'commands', signed({ ssl_check: '1', token: 'legacy' }))
  t.equal(check.statusCode, 200)
  t.same(check.json(), { text: '' })
  const forged = await send(app, 'commands', signed({ ssl_check: '1' }, { secret: 'another-secret' }))
  t.equal(forged.statusCode, 401)
  const noUser = await send(app, 'commands', signed({ text: 'help' }))
  t.equal(noUser.statusCode, 400)
  t.equal(noUser.json().error.code, 'REGENT_VALIDATION')
})
