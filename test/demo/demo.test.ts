import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { isAlive } from '../../src/db/embedded.js'
import type { DemoState } from '../../src/demo/cli.js'
import { MANIFEST_ACCEPT } from '../../src/oci/index.js'
import type { RunView } from '../gc/support.js'
import { type RunningChild, runNode } from '../helpers/child.js'

interface DeletionView {
  id: string
  state: string
  planHash: string
  plan: { items: { vanishingTags: string[] }[] }
}

/**
 * `npm run demo` end to end, as a person runs it: the compiled CLI as a child process with the real
 * docker-registry and the embedded PostgreSQL, driven over HTTP with the tokens it printed.
 */
const cli = new URL('../../dist/demo/cli.js', import.meta.url).pathname
const registryBin = process.env.REGENT_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry'

type Demo = RunningChild

function runDemo(args: string[]): Demo {
  return runNode([cli, ...args])
}

async function waitFor(demo: Demo, text: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!demo.output().includes(text)) {
    if (demo.child.exitCode !== null) throw new Error(`the demo exited early:\n${demo.output()}`)
    if (Date.now() > deadline) throw new Error(`no "${text}" in time:\n${demo.output()}`)
    await sleep(200)
  }
}

t.test(
  'the demo starts, takes a deletion through approval, restore and GC with bytes freed, and Ctrl-C stops it all',
  async (t) => {
    const parent = mkdtempSync(path.join(tmpdir(), 'regent-demo-test-'))
    t.teardown(() => rmSync(parent, { recursive: true, force: true }))
    // As root the embedded database runs as the `postgres` user, which must pass through here.
    chmodSync(parent, 0o711)
    const dir = path.join(parent, 'demo')
    const demo = runDemo(['--port', '0', '--dir', dir, '--registry-bin', registryBin])
    t.teardown(() => demo.child.kill('SIGKILL'))
    await waitFor(demo, 'Press Ctrl-C to stop')
    const state = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8')) as DemoState
    const token = (variable: string) => state.tokens.find((x) => x.variable === variable)!.token
    t.match(demo.output(), new RegExp(`export REQUESTER=${token('REQUESTER')}`), 'the tokens are printed')
    t.match(demo.output(), /export APPROVER=[\w-]+\.[\w-]+\.[\w-]+/)
    t.match(demo.output(), /export ADMIN=[\w-]+\.[\w-]+\.[\w-]+/)

    const call = async <T = DeletionView>(who: string, method: string, url: string, body?: object) => {
      const res = await fetch(`${state.regentUrl}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${token(who)}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      })
      return { status: res.status, body: (await res.json()) as T }
    }
    const headTag = async (repository: string, tag: string) => {
      const res = await fetch(`${state.registryUrl}/v2/${repository}/manifests/${tag}`, {
        method: 'HEAD',
        headers: { accept: MANIFEST_ACCEPT },
      })
      return res.status
    }
    const waitForDeletion = async (id: string, states: string[]) => {
      for (let i = 0; i < 300; i++) {
        const { body } = await call('APPROVER', 'GET', `/v1/deletions/${id}`)
        if (states.includes(body.state)) return body
        await sleep(200)
      }
      throw new Error(`deletion ${id} never reached ${states}`)
    }
    const deleteFeatureCart = async () => {
      const created = await call('REQUESTER', 'POST', '/v1/deletions', {
        registry: 'local',
        verb: 'delete-manifest',
        targets: [{ repository: 'payments/api', tag: 'feature-cart' }],
        reason: 'merged',
      })
      t.equal(created.status, 201, JSON.stringify(created.body))
      t.equal(created.body.state, 'awaiting_approval', 'the payments team needs an approval')
      t.same(
        created.body.plan.items[0]?.vanishingTags,
        ['feature-cart', 'pr-102'],
        'the sibling tag is disclosed',
      )
      const approved = await call('APPROVER', 'POST', `/v1/deletions/${created.body.id}/approvals`, {
        decision: 'approve',
        planHash: created.body.planHash,
      })
      t.equal(approved.status, 200, JSON.stringify(approved.body))
      t.equal((await waitForDeletion(created.body.id, ['succeeded', 'failed'])).state, 'succeeded')
      return created.body.id as string
    }

    // One deletion with approval, then its restore.
    t.equal(await headTag('payments/api', 'feature-cart'), 200)
    const first = await deleteFeatureCart()
    t.equal(await headTag('payments/api', 'feature-cart'), 404)
    t.equal(await headTag('payments/api', 'pr-102'), 404)
    const restored = await call('APPROVER', 'POST', `/v1/deletions/${first}/restore`)
    t.equal(restored.status, 200, JSON.stringify(restored.body))
    t.equal(restored.body.state, 'restored')
    t.equal(await headTag('payments/api', 'feature-cart'), 200, 'restored')
    t.equal(await headTag('payments/api', 'pr-102'), 200, 'its sibling tag too')

    // Deleted again for good, then a GC through the read-only restart frees its bytes.
    await deleteFeatureCart()
    const gc = await call('ADMIN', 'POST', '/v1/registries/local/gc', {})
    t.equal(gc.status, 201, JSON.stringify(gc.body))
    let run = (await call<RunView>('ADMIN', 'GET', `/v1/gc-runs/${gc.body.id}`)).body
    for (let i = 0; i < 600 && !['succeeded', 'failed'].includes(run.state); i++) {
      await sleep(200)
      run = (await call<RunView>('ADMIN', 'GET', `/v1/gc-runs/${gc.body.id}`)).body
    }
    t.equal(run.state, 'succeeded', run.summary)
    t.ok(
      (run.bytesFreed ?? 0) > 700 * 1024,
      `the deleted image's own layer came back (${run.bytesFreed} bytes)`,
    )
    const steps = run.steps.map((s) => `${s.name}:${s.ok}`)
    t.match(steps, [
      'wait-deletions:true',
      'before:true',
      'wait:true',
      'dry-run:true',
      'gc:true',
      'after:true',
    ])
    t.match(demo.output(), /registry restarted read-only[\s\S]*registry restarted read-write/)
    t.equal(await headTag('payments/api', '1.1.0'), 200, 'the registry serves again after the GC')
    t.equal(
      (await fetch(`${state.registryUrl}/v2/payments/api/blobs/uploads/`, { method: 'POST' })).status,
      202,
      'and takes pushes again (read-write)',
    )

    // Ctrl-C stops everything the demo started and removes its folder.
    const started = processesMentioning(dir).filter((p) => p.pid !== demo.child.pid)
    t.ok(
      started.some((p) => /docker-registry serve .*registry\.yml/.test(p.command)),
      'the registry runs from the demo folder',
    )
    t.ok(
      started.some((p) => /postgres -D /.test(p.command)),
      'the database runs from the demo folder',
    )
    demo.child.kill('SIGINT')
    const { code } = await demo.exited
    t.equal(code, 0, 'exits 0 after Ctrl-C')
    t.match(demo.output(), /stopped\.\n$/)
    await sleep(200)
    t.same(
      started.filter((p) => isAlive(p.pid)),
      [],
      'no process it started is left',
    )
    t.same(processesMentioning(dir), [], 'nothing runs from its folder')
    t.notOk(existsSync(dir), 'the demo folder is removed')
  },
)

/** Processes whose command line names `dir` (the registry's config, postgres' data folder). */
function processesMentioning(dir: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim()
      if (command.includes(dir)) found.push({ pid: Number(entry), command })
    } catch {}
  }
  return found
}

t.test('without docker-registry the demo says how to install it and exits cleanly', async (t) => {
  const parent = mkdtempSync(path.join(tmpdir(), 'regent-demo-test-'))
  t.teardown(() => rmSync(parent, { recursive: true, force: true }))
  const dir = path.join(parent, 'demo')
  const demo = runDemo(['--dir', dir, '--registry-bin', path.join(parent, 'no-such-registry')])
  const { code } = await demo.exited
  t.equal(code, 1)
  t.match(demo.output(), /apt-get install -y docker-registry/)
  t.notMatch(demo.output(), /\n\s+at /, 'no stack trace')
  t.notOk(existsSync(dir), 'nothing was created')
})

t.test('a bad option is refused with the usage', async (t) => {
  const demo = runDemo(['--port', 'eighty'])
  const { code } = await demo.exited
  t.equal(code, 2)
  t.match(demo.output(), /--port: not a port: eighty[\s\S]*usage: npm run demo/)

  const used = mkdtempSync(path.join(tmpdir(), 'regent-demo-test-'))
  t.teardown(() => rmSync(used, { recursive: true, force: true }))
  writeFileSync(path.join(used, 'notes.txt'), 'mine')
  const busy = runDemo(['--dir', used, '--registry-bin', registryBin])
  const refused = await busy.exited
  t.equal(refused.code, 1)
  t.match(
    busy.output(),
    /--dir .* is not empty/,
    'a folder with things in it is not used (it is removed at the end)',
  )
  t.notMatch(busy.output(), /\n\s+at /, 'no stack trace')
  t.equal(readFileSync(path.join(used, 'notes.txt'), 'utf8'), 'mine', 'and left as it was')
})
