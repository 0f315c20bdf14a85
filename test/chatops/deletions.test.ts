import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build } from '../helper.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import {
  AMOS,
  admin,
  auditEvents,
  buttons,
  click,
  command,
  governance,
  NOBODY,
  RITA,
  received,
  slackConfig,
  textOf,
} from './support.js'

async function setup(t: Test) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const capture = await startCaptureServer()
  t.teardown(capture.stop)
  const app = await build(t, {
    config: {
      registries: [registryConfig(registry, { name: 'local' })],
      governance,
      chatops: slackConfig(capture.url),
    },
  })
  const image = await pushImage(client, 'payments/api', { tags: ['v1', 'v1-rc'] })
  await pushImage(client, 'payments/api', { tags: ['v2'] })
  return { app, capture, client, image }
}

t.test('delete --dry-run answers with the plan and creates nothing', async (t) => {
  const { app, image } = await setup(t)
  const res = await command(app, RITA, 'delete local payments/api:v1 --reason "old build" --dry-run')
  t.equal(res.statusCode, 200)
  const message = res.json()
  t.equal(message.response_type, 'ephemeral')
  const text = textOf(message)
  t.match(text, /Dry run/)
  t.match(text, /1 item\(s\), 2 tag\(s\) vanish/, 'both tags of the digest vanish')
  t.match(text, /`v1`, `v1-rc` with `sha256:/, 'the vanishing tags are named with their digest')
  t.match(text, image.digest.slice(0, 19))
  t.match(text, /1 approval\(s\) needed/)
  t.same(buttons(message), [], 'a dry run has no buttons')
  const list = await app.inject({ url: '/v1/deletions', headers: admin })
  t.same(list.json().items, [], 'nothing was created')
})

t.test(
  'delete creates a request with buttons; an approver click approves it, the requester click is refused',
  async (t) => {
    const { app, capture, image } = await setup(t)
    const res = await command(app, RITA, 'delete local payments/api:v1 --reason "old build" --ticket OPS-7')
    t.equal(res.statusCode, 200)
    const message = res.json()
    t.equal(message.response_type, 'in_channel', 'approvers in the channel see it')
    const [approve, reject] = buttons(message)
    t.equal(approve?.action_id, 'approve')
    t.equal(reject?.action_id, 'reject')

    const list = await app.inject({ url: '/v1/deletions', headers: admin })
    const [created] = list.json().items
    t.match(created, {
      state: 'awaiting_approval',
      verb: 'delete-manifest',
      reason: 'old build',
      ticket: 'OPS-7',
    })
    t.match(created.requester, { subject: 'rita', person: 'rita' })
    t.equal(approve?.value, `${created.id}:${created.planHash}`, 'the button is bound to the plan shown')
    t.equal(created.plan.items[0].digest, image.digest)

    // The requester's own click.
    const own = await click(app, RITA, approve!, `${capture.url}/actions/own`)
    t.equal(own.statusCode, 200)
    const [refusal] = await received(capture, 1)
    t.equal(refusal!.url, '/actions/own')
    const refused = JSON.parse(refusal!.body)
    t.equal(refused.replace_original, false, 'the request message stays for the approvers')
    t.equal(refused.response_type, 'ephemeral')
    t.match(textOf(refused), /REGENT_SELF_APPROVAL/)
    const still = await app.inject({ url: `/v1/deletions/${created.id}`, headers: admin })
    t.equal(still.json().state, 'awaiting_approval')

    // An approver of the owning team.
    const ok = await click(app, AMOS, approve!, `${capture.url}/actions/amos`)
    t.equal(ok.statusCode, 200)
    const posts = await received(capture, 2)
    const approved = JSON.parse(posts[1]!.body)
    t.equal(approved.replace_original, true, 'the message is replaced with the decided request')
    t.match(approved.text, /is queued/)
    t.same(buttons(approved), [], 'no buttons once decided')
    const after = await app.inject({ url: `/v1/deletions/${created.id}`, headers: admin })
    t.equal(after.json().state, 'queued', 'the request moved on to execution')
    t.match(after.json().approvals.given, [{ approver: 'amos', decision: 'approve' }])

    const events = await auditEvents(app)
    const about = events.filter((e) => e.deletionId === created.id)
    t.match(
      about.find((e) => e.action === 'deletion.requested'),
      { actorSubject: 'rita', channel: 'slack' },
      'the request is audited as the chat user on the slack channel',
    )
    t.match(
      about.find((e) => e.action === 'deletion.approval_refused'),
      {
        actorSubject: 'rita',
        channel: 'slack',
        details: { code: 'REGENT_SELF_APPROVAL' },
      },
    )
    const given = about.find((e) => e.action === 'deletion.approval_given')
    t.match(given, { actorSubject: 'amos', channel: 'slack' })
    const clickEvent = events.find(
      (e) => e.action === 'chatops.slack.interaction' && e.requestId === given?.requestId,
    )
    t.match(
      clickEvent,
      { actorSubject: 'amos', details: { slackUserId: AMOS, action: 'approve' } },
      'the Slack user id is in the audit',
    )
  },
)

t.test('a click bound to another plan is refused and changes nothing', async (t) => {
  const { app, capture } = await setup(t)
  const res = await command(app, RITA, 'delete local payments/api:v2 --reason "old"')
  const [approve] = buttons(res.json())
  const [id] = approve!.value.split(':')
  const stale = { action_id: 'approve', value: `${id}:${'0'.repeat(64)}` }
  await click(app, AMOS, stale, `${capture.url}/actions/stale`)
  const [post] = await received(capture, 1)
  t.match(textOf(JSON.parse(post!.body)), /REGENT_PLAN_CHANGED/)
  const after = await app.inject({ url: `/v1/deletions/${id}`, headers: admin })
  t.equal(after.json().state, 'awaiting_approval')
})

t.test('commands status, reject and approve go through the same service', async (t) => {
  const { app } = await setup(t)
  const created = await command(app, RITA, 'delete local payments/api:v2 --reason "old"')
  const [approve] = buttons(created.json())
  const [id] = approve!.value.split(':')
  const status = await command(app, AMOS, `status ${id}`)
  t.equal(status.json().response_type, 'ephemeral')
  t.match(status.json().text, /awaiting approval/)
  const self = await command(app, RITA, `approve ${id}`)
  t.match(self.json().text, /REGENT_SELF_APPROVAL/)
  const rejected = await command(app, AMOS, `reject ${id} not now, still deployed`)
  t.match(rejected.json().text, /is rejected/)
  const after = await app.inject({ url: `/v1/deletions/${id}`, headers: admin })
  t.equal(after.json().state, 'rejected')
  t.match(after.json().approvals.given, [
    { approver: 'amos', decision: 'reject', comment: 'not now, still deployed' },
  ])
  const missing = await command(app, AMOS, 'status 00000000-0000-4000-8000-000000000000')
  t.match(missing.json().text, /REGENT_DELETION_NOT_FOUND/)
})

t.test('an unmapped Slack user can do nothing: no commands, no clicks', async (t) => {
  const { app, capture } = await setup(t)
  const created = await command(app, RITA, 'delete local payments/api:v2 --reason "old"')
  const [approve] = buttons(created.json())
  const [id] = approve!.value.split(':')

  const del = await command(app, NOBODY, 'delete local payments/api:v1 --reason "mine now"')
  t.match(del.json().text, /not linked to a Regent user/)
  const tags = await command(app, NOBODY, 'tags local payments/api')
  t.match(tags.json().text, /not linked to a Regent user/)
  t.notMatch(JSON.stringify(tags.json()), /v1-rc/, 'nothing about the registry leaks')
  const approveCmd = await command(app, NOBODY, `approve ${id}`)
  t.match(approveCmd.json().text, /not linked/)

  const res = await click(app, NOBODY, approve!, `${capture.url}/actions/nobody`)
  t.equal(res.statusCode, 200)
  const [post] = await received(capture, 1)
  t.match(JSON.parse(post!.body).text, /not linked to a Regent user/)

  const list = await app.inject({ url: '/v1/deletions', headers: admin })
  t.equal(list.json().items.length, 1, 'no request was created')
  t.equal(list.json().items[0].state, 'awaiting_approval', 'and none was approved')
  const unmapped = (await auditEvents(app)).filter((e) => e.action === 'chatops.slack.unmapped_user')
  t.equal(unmapped.length, 4, 'every attempt is audited')
  for (const e of unmapped)
    t.match(e, { actorSubject: `slack:${NOBODY}`, channel: 'slack', outcome: 'refused' })
})

t.test('tags lists the repository, filtered by a pattern', async (t) => {
  const { app, image } = await setup(t)
  const all = await command(app, RITA, 'tags local payments/api')
  t.match(all.json().text, /3 tag\(s\)/)
  const some = await command(app, RITA, 'tags local payments/api v1*')
  const text = textOf(some.json())
  t.match(some.json().text, /2 tag\(s\)/)
  t.match(text, image.digest.slice(0, 19))
  t.notMatch(text, /`v2`/)
  const registries = await command(app, RITA, 'registries')
  t.match(textOf(registries.json()), /\*local\* \(distribution\)/)
})
