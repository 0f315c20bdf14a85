import type { Page } from 'playwright-core'
import t from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { build, createTestDatabase, signToken } from '../helper.js'
import {
  focusedText,
  go,
  launchBrowser,
  openPage,
  screenshot,
  seriousA11yViolations,
  signInWithToken,
} from '../helpers/browser.js'
import { pushImage } from '../helpers/fixtures.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'

// The console in a real browser against the real service: a real docker-registry, Postgres, the
// job worker executing approved requests, and the GraphQL subscription for live progress.

const governance = {
  teams: [
    { name: 'payments', repositories: [{ pattern: 'payments/**' }] },
    { name: 'search', repositories: [{ pattern: 'search/**' }] },
  ],
  approvals: { default: { count: 1, from: 'owning-team-approvers' } },
}
const people = {
  rita: { sub: 'rita', groups: ['payments'], roles: ['requester'] },
  arno: { sub: 'arno', groups: ['payments'], roles: ['approver'] },
  vic: { sub: 'vic', groups: ['payments'], roles: ['viewer'] },
  sam: { sub: 'sam', groups: ['search'], roles: ['requester'] },
  root: { sub: 'root', roles: ['admin'] },
}
type Person = keyof typeof people
const token = (who: Person) => signToken(people[who])
const bearer = (who: Person) => ({ authorization: `Bearer ${token(who)}` })

const registry = await withRegistry(t)
const client = new RegistryClient(registryConfig(registry))
t.teardown(() => client.close())
const images = {
  t1: await pushImage(client, 'payments/api', { tags: ['t1-a', 't1-b', 't1-c'], layers: 1 }),
  t2: await pushImage(client, 'payments/api', { tags: ['t2-a', 't2-b'], layers: 1 }),
  t3: await pushImage(client, 'payments/api', { tags: ['t3-a'], layers: 1 }),
  t4: await pushImage(client, 'payments/api', { tags: ['t4-a'], layers: 1 }),
  t5: await pushImage(client, 'payments/api', { tags: ['t5-a'], layers: 1 }),
  search: await pushImage(client, 'search/web', { tags: ['s-1'], layers: 1 }),
}
await pushImage(client, 'payments/api', { tags: ['keep-1', 'keep-2'], layers: 1 })

const databaseUrl = await createTestDatabase(t)
const config = {
  registries: [registryConfig(registry, { name: 'local' })],
  governance,
  jobs: { leaseMs: 5000, heartbeatMs: 1000, pollMs: 300, backoffBaseMs: 50, backoffMaxMs: 500 },
}
// The replica the browser talks to runs no worker: a test that wants execution starts one (a second
// replica on the same database) once the page is subscribed, so every update travels live.
const app = await build(t, { databaseUrl, config: { ...config, worker: false } })
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
const browser = await launchBrowser(t)

async function fileRequest(
  who: Person,
  repository: string,
  tag: string,
): Promise<{ id: string; planHash: string }> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/deletions',
    headers: bearer(who),
    payload: {
      registry: 'local',
      verb: 'delete-manifest',
      targets: [{ repository, tag }],
      reason: 'cleanup',
    },
  })
  if (res.statusCode !== 201) throw new Error(`not filed: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function deletionState(id: string): Promise<string> {
  const res = await app.inject({ url: `/v1/deletions/${id}`, headers: bearer('root') })
  return res.json().state
}

async function tagsOf(repository: string): Promise<string[]> {
  const tags: string[] = []
  for await (const tag of client.tags(repository)) tags.push(tag)
  return tags.sort()
}

async function signedIn(who: Person, t: Parameters<typeof openPage>[1]) {
  const opened = await openPage(browser, t)
  await signInWithToken(opened.page, base, token(who), people[who].sub)
  return opened
}

const texts = (page: Page, selector: string) => page.locator(selector).allInnerTexts()

t.test(
  'a requester files a deletion from the console: the dry run lists the vanishing sibling tags, and the request reaches the approver’s inbox, not the requester’s',
  async (t) => {
    const { page, problems } = await signedIn('rita', t)
    await go(page, '#/new')
    await page.getByLabel('Repository', { exact: true }).fill('payments/api')
    await page.getByRole('button', { name: 'Show tags' }).click()
    await page.getByLabel('Search tags').fill('t1-')
    await page.getByRole('checkbox', { name: 't1-a', exact: true }).check()
    await page.getByLabel(/^Delete manifest/).check()
    await page.getByLabel('Reason (required)').fill('superseded build')
    await page.getByRole('button', { name: 'Show plan (dry run)' }).click()

    const vanishing = page.locator('.dry-run td.vanishing')
    await vanishing.first().waitFor()
    t.equal(await vanishing.count(), 1, 'one item')
    t.same(
      await vanishing.locator('li').allInnerTexts(),
      ['t1-a', 't1-b', 't1-c'],
      'the plan names every tag on the digest: the one picked and its two siblings',
    )
    t.match(
      await page.locator('.dry-run').innerText(),
      images.t1.digest.slice(0, 19),
      'grouped under the digest',
    )

    const keys: (string | undefined)[] = []
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/v1/deletions') && !req.postDataJSON().dryRun)
        keys.push(req.headers()['idempotency-key'])
    })
    await page.getByRole('button', { name: 'Request deletion' }).dblclick()
    await page.locator('h1 .badge.state-awaiting_approval').waitFor()
    const id = page.url().split('#/requests/')[1]!
    t.ok(keys.length >= 1 && keys.every((k) => k && k === keys[0]), 'every filing call carries one key')

    const mine = await app.inject({ url: '/v1/deletions?requester=rita', headers: bearer('root') })
    t.same(
      mine.json().items.map((d: { id: string }) => d.id),
      [id],
      'a double click filed one request',
    )
    const replay = await app.inject({
      method: 'POST',
      url: '/v1/deletions',
      headers: { ...bearer('rita'), 'idempotency-key': keys[0]! },
      payload: {
        registry: 'local',
        verb: 'delete-manifest',
        targets: [{ repository: 'payments/api', tag: 't1-a' }],
        reason: 'superseded build',
      },
    })
    t.equal(replay.statusCode, 200, 'the same key again answers the request already filed')
    t.equal(replay.json().id, id)

    await go(page, '#/')
    await page.getByText('Nothing awaits your approval.').waitFor()
    t.equal(await page.locator(`tr[data-deletion="${id}"]`).count(), 0, 'not in the requester’s own inbox')

    const approver = await signedIn('arno', t)
    await approver.page.locator(`tr[data-deletion="${id}"]`).waitFor()
    const row = await approver.page.locator(`tr[data-deletion="${id}"]`).innerText()
    t.match(row, /rita/, 'the inbox row names the requester')
    t.match(row, /1 item; up to 30% of the tags of payments\/api; teams: payments/, 'and the blast radius')
    t.same([...problems, ...approver.problems], [], 'no script errors')
  },
)

t.test(
  'the approver approves and watches it execute live to succeeded; the tags are gone; the audit page names both people',
  async (t) => {
    const request = await fileRequest('rita', 'payments/api', 't2-a')
    const { page, problems } = await signedIn('arno', t)
    const frames: string[] = []
    let worker: Promise<unknown> | undefined
    page.on('websocket', (ws) => {
      ws.on('framereceived', (frame) => frames.push(String(frame.payload)))
      ws.on('framesent', (frame) => {
        if (String(frame.payload).includes('"type":"subscribe"'))
          worker ??= build(t, { databaseUrl, config: { ...config, worker: true } })
      })
    })

    await go(page, `#/requests/${request.id}`)
    await page.locator('h1 .badge.state-awaiting_approval').waitFor()
    t.match(
      await page.locator('.plan td.vanishing').innerText(),
      /t2-a[\s\S]*t2-b/,
      'the plan shows both tags',
    )
    await page.getByLabel('Comment (optional)').fill('fine by me')
    await page.getByRole('button', { name: 'Approve', exact: true }).click()

    await page.locator('h1 .badge.state-succeeded').waitFor({ timeout: 60_000 })
    t.ok(worker, 'the worker started once the page had subscribed')
    await worker
    t.ok(
      frames.some((f) => /"deletionUpdated".*"state":"(running|succeeded)"/.test(f)),
      'progress arrived over the GraphQL subscription',
    )
    await page.locator('table.items tr[data-outcome="deleted"]').waitFor()
    t.match(await page.locator('.counts').innerText(), /1 deleted, 0 skipped, 0 failed/)
    t.equal(await deletionState(request.id), 'succeeded')
    const left = await tagsOf('payments/api')
    t.notOk(left.includes('t2-a') || left.includes('t2-b'), 'the registry no longer has the tags')
    t.ok(left.includes('keep-1') && left.includes('t3-a'), 'other images keep their tags')

    await page.getByRole('link', { name: 'Audit events of this request' }).click()
    await page.locator('table.audit tbody tr').first().waitFor()
    const actors = await texts(page, 'table.audit td.actor')
    const actions = await texts(page, 'table.audit tbody tr td:nth-child(3)')
    t.ok(
      actors.some((a) => a.startsWith('rita')),
      'the requester appears',
    )
    t.ok(
      actors.some((a) => a.startsWith('arno')),
      'the approver appears',
    )
    for (const action of ['deletion.requested', 'deletion.approval_given', 'deletion.succeeded'])
      t.ok(actions.includes(action), `${action} is listed`)
    await page
      .getByRole('button', { name: /Show record/ })
      .first()
      .click()
    t.match(await page.locator('pre.record').innerText(), /"hash":/, 'an event opens as its full record')
    t.same(problems, [], 'no script errors')
  },
)

t.test(
  'a plan that changed since the page loaded: the approval is refused with the reason shown',
  async (t) => {
    const request = await fileRequest('rita', 'payments/api', 't3-a')
    const { page, problems } = await signedIn('arno', t)
    await go(page, `#/requests/${request.id}`)
    await page.getByRole('button', { name: 'Approve', exact: true }).waitFor()

    // While the page is open, things change: a legal hold is placed on the repository. The plan the
    // page shows can no longer run, so approving it is refused, with the reason.
    const hold = await app.inject({
      method: 'POST',
      url: '/v1/legal-holds',
      headers: bearer('root'),
      payload: {
        repository: 'payments/api',
        digest: images.t3.digest,
        reason: 'litigation 31',
        until: new Date(Date.now() + 3_600_000).toISOString(),
      },
    })
    t.equal(hold.statusCode, 201)

    await page.getByRole('button', { name: 'Approve', exact: true }).click()
    await page.locator('[role="alert"] .error-code', { hasText: 'REGENT_HELD' }).waitFor()
    t.match(
      await page.locator('[role="alert"]', { hasText: 'REGENT_HELD' }).first().innerText(),
      /litigation 31/,
      'the refusal says why',
    )
    t.equal(await deletionState(request.id), 'awaiting_approval', 'nothing was approved')
    t.same(problems, [], 'no script errors')
  },
)

t.test('a viewer sees no Approve button and cannot reach another team’s audit events', async (t) => {
  const ours = await fileRequest('rita', 'payments/api', 't4-a')
  const theirs = await fileRequest('sam', 'search/web', 's-1')
  const adminView = await app.inject({ url: `/v1/audit?deletionId=${theirs.id}`, headers: bearer('root') })
  t.ok(adminView.json().items.length > 0, 'the other team’s request has audit events')

  const { page, problems } = await signedIn('vic', t)
  await go(page, `#/requests/${ours.id}`)
  await page.locator('.decision').waitFor()
  t.equal(await page.getByRole('button', { name: 'Approve', exact: true }).count(), 0, 'no Approve button')
  t.equal(await page.getByRole('button', { name: 'Reject' }).count(), 0, 'no Reject button')
  t.match(await page.locator('.decision').innerText(), /approving needs the approver role/)

  await go(page, `#/audit?deletionId=${ours.id}`)
  await page.locator('table.audit tbody tr').first().waitFor()
  t.pass('the viewer reads the audit events of their team’s request')

  await go(page, `#/audit?deletionId=${theirs.id}`)
  await page.locator('[role="alert"] .error-code', { hasText: 'REGENT_FORBIDDEN' }).waitFor()
  t.equal(await page.locator('table.audit').count(), 0, 'no events of the other team’s request')
  await go(page, '#/audit?registry=local&repository=search%2Fweb')
  await page.locator('[role="alert"] .error-message', { hasText: 'not owned by a team of yours' }).waitFor()
  t.equal(await page.locator('table.audit').count(), 0, 'no events of the other team’s repository')
  await go(page, `#/requests/${theirs.id}`)
  await page.locator('[role="alert"] .error-code', { hasText: 'REGENT_DELETION_NOT_FOUND' }).waitFor()
  t.pass('nor the other team’s request itself')
  t.same(problems, [], 'no script errors')
})

t.test(
  'screenshots of the inbox, a request page and the audit page; axe finds no serious accessibility violation',
  async (t) => {
    const request = await fileRequest('rita', 'payments/api', 't5-a')
    const signIn = await openPage(browser, t)
    await signIn.page.goto(`${base}/ui/`)
    await signIn.page.getByLabel('Bearer token').waitFor()
    const pages: [string, Page][] = [['sign-in', signIn.page]]

    const approver = await signedIn('arno', t)
    await approver.page.locator(`tr[data-deletion="${request.id}"]`).waitFor()
    pages.push(['inbox', approver.page])
    for (const [name, page] of pages) {
      t.same(await seriousA11yViolations(page), [], `${name}: no serious or critical violations`)
      t.ok(await screenshot(page, `console-${name}`), `${name}: screenshot written`)
    }

    await go(approver.page, `#/requests/${request.id}`)
    await approver.page.getByRole('button', { name: 'Approve', exact: true }).waitFor()
    t.same(await seriousA11yViolations(approver.page), [], 'request page: no serious or critical violations')
    await screenshot(approver.page, 'console-request')

    // The admin's audit page: every event, with the hash chain verified.
    const admin = await signedIn('root', t)
    await go(admin.page, '#/audit')
    await admin.page.locator('table.audit tbody tr').first().waitFor()
    await admin.page.locator('.chain .notice-ok', { hasText: 'Intact' }).waitFor()
    await admin.page
      .getByRole('button', { name: /Show record/ })
      .first()
      .click()
    t.same(await seriousA11yViolations(admin.page), [], 'audit page: no serious or critical violations')
    await screenshot(admin.page, 'console-audit')

    // Keyboard users: after a navigation the focus is on the new page's heading, and the first
    // stop of the page is the link that skips the navigation.
    await go(admin.page, '#/gc')
    await admin.page.getByRole('heading', { name: 'Garbage collection', level: 1 }).waitFor()
    await admin.page.waitForFunction('document.activeElement?.tagName === "H1"')
    t.equal(await focusedText(admin.page), 'Garbage collection', 'the new page’s heading has the focus')
    const first = await admin.page.evaluate(
      'document.querySelector("a[href], button, input, select, textarea")?.textContent',
    )
    t.equal(first, 'Skip to content', 'the skip link comes first')
    t.same([...signIn.problems, ...approver.problems, ...admin.problems], [], 'no script errors')
  },
)

t.test('browse, garbage collection and retention pages render what the API answers', async (t) => {
  const policy = await app.inject({
    method: 'POST',
    url: '/v1/policies',
    headers: bearer('arno'),
    payload: {
      name: 'payments-keep',
      team: 'payments',
      registry: 'local',
      repositories: ['payments/**'],
      rules: [{ description: 'keepers', select: { include: ['keep-*'] }, keep: { always: true } }],
      default: 'keep',
    },
  })
  t.equal(policy.statusCode, 201, policy.body)

  const { page, problems } = await signedIn('root', t)
  await go(page, '#/browse')
  await page.getByRole('link', { name: 'local', exact: true }).click()
  await page.getByRole('link', { name: 'payments/api', exact: true }).click()
  await page.getByRole('link', { name: 'keep-1', exact: true }).click()
  await page.getByRole('heading', { name: 'History' }).waitFor()
  t.match(await page.locator('dl.facts').first().innerText(), 'linux/amd64', 'a manifest with its platform')

  await go(page, '#/gc')
  await page.getByRole('button', { name: 'Request', exact: true }).click()
  await page.locator('[role="alert"] .error-code', { hasText: 'REGENT_GC_NOT_CONFIGURED' }).waitFor()
  t.pass('a refused GC request says why')

  await go(page, '#/retention')
  await page.getByRole('link', { name: 'payments-keep' }).click()
  await page.getByRole('button', { name: 'Preview now' }).click()
  await page.locator('table.verdicts tbody tr').first().waitFor()
  const row = await page.locator('table.verdicts tbody tr', { hasText: 'keep-1' }).innerText()
  t.match(row, /\tkeep\t/, 'each tag with its verdict')
  t.match(row, /keepers/, 'and the rule that decided it')
  t.same(problems, [], 'no script errors')
})
