import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build } from '../helper.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { admin, buttons, command, governance, RITA, received, slackConfig, textOf } from './support.js'

t.test(
  'a slow registry: the command answers before the registry does and the result arrives at response_url',
  async (t) => {
    const registry = await withRegistry(t)
    const client = new RegistryClient(registryConfig(registry))
    t.teardown(() => client.close())
    const image = await pushImage(client, 'payments/api', { tags: ['v1', 'v1-rc'] })
    const proxy = await startFaultProxy(registry.url)
    t.teardown(proxy.stop)
    const capture = await startCaptureServer()
    t.teardown(capture.stop)
    const app = await build(t, {
      config: {
        registries: [registryConfig(proxy, { name: 'local' })],
        governance,
        chatops: slackConfig(capture.url),
      },
    })
    // Every tag listing takes 6 s: twice what Slack waits, and far past Regent's own answer budget.
    proxy.addFault({ path: /\/tags\/list/, fault: { kind: 'delay', ms: 6000 } })

    // Slack gives up after 3 s. The answer must not wait for the registry at all: it comes before
    // the result, which needs the slow registry (an ordering, whatever the machine's load).
    let started = Date.now()
    const tags = await command(app, RITA, 'tags local payments/api', `${capture.url}/commands/tags`)
    let answeredAt = Date.now()
    t.equal(tags.statusCode, 200)
    t.match(tags.json().text, /Working on it/)
    const [listed] = await received(capture, 1)
    t.equal(listed!.url, '/commands/tags')
    t.ok(listed!.at - started >= 6000, 'the full answer came after the slow registry answered')
    t.ok(answeredAt <= listed!.at, `answered first, in ${answeredAt - started} ms`)
    const listing = JSON.parse(listed!.body)
    t.match(listing.text, /2 tag\(s\) in local\/payments\/api/)
    t.match(textOf(listing), image.digest.slice(0, 19))

    started = Date.now()
    const created = await command(
      app,
      RITA,
      'delete local payments/api:v1 --reason "slow"',
      `${capture.url}/commands/delete`,
    )
    answeredAt = Date.now()
    t.match(created.json().text, /Working on it/)
    const posts = await received(capture, 2)
    t.ok(posts[1]!.at - started >= 6000, 'the request was filed after the slow registry answered')
    t.ok(answeredAt <= posts[1]!.at, `answered first, in ${answeredAt - started} ms`)
    const filed = JSON.parse(posts[1]!.body)
    t.equal(filed.response_type, 'in_channel')
    t.equal(buttons(filed).length, 2, 'the late answer carries the buttons')
    const list = await app.inject({ url: '/v1/deletions', headers: admin })
    t.equal(list.json().items[0].state, 'awaiting_approval')
    t.equal(buttons(filed)[0]!.value, `${list.json().items[0].id}:${list.json().items[0].planHash}`)
  },
)

t.test('a response_url outside the allowed origins is never posted to', async (t) => {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  await pushImage(client, 'payments/api', { tags: ['v1'] })
  const proxy = await startFaultProxy(registry.url)
  t.teardown(proxy.stop)
  const allowed = await startCaptureServer()
  t.teardown(allowed.stop)
  const elsewhere = await startCaptureServer()
  t.teardown(elsewhere.stop)
  const app = await build(t, {
    config: {
      registries: [registryConfig(proxy, { name: 'local' })],
      chatops: slackConfig(allowed.url, { replyBudgetMs: 300 }),
    },
  })
  proxy.addFault({ path: /\/tags\/list/, fault: { kind: 'delay', ms: 800 } })
  const res = await command(app, RITA, 'tags local payments/api', `${elsewhere.url}/internal`)
  t.equal(res.statusCode, 200)
  t.match(res.json().text, /1 tag\(s\)/, 'with nowhere allowed to post later, the answer comes in line')
  t.equal(elsewhere.requests.length, 0)
  t.equal(allowed.requests.length, 0)
})
