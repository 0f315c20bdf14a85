import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { stringify as toYaml } from 'yaml'
import { buildApp, LOG_REDACT } from '../app.js'
import { ConfigError, loadConfig } from '../config.js'
import { type EmbeddedPostgres, freePort } from '../db/embedded.js'
import { RegistryClient } from '../oci/index.js'
import { type DemoImages, pushDemoImages } from './images.js'
import { DemoRegistry } from './registry.js'
import { DEMO_PEOPLE, DEMO_POLICY, demoConfig, demoToken } from './settings.js'
import { tour } from './tour.js'

/**
 * `npm run demo`: a local registry with demo images for two teams, Regent on the embedded database
 * configured for them, tokens for three people and a short tour. Ctrl-C (or SIGTERM) stops all of
 * it and removes the demo's folder (kept with `--keep`).
 */

const USAGE = `usage: npm run demo -- [--port 8080] [--dir <empty folder>] [--keep] [--registry-bin docker-registry]

  --port          Regent's HTTP port (0 picks a free one)
  --dir           where the registry storage, database, config and log go (default: a new temp folder)
  --keep          leave that folder in place on exit
  --registry-bin  the distribution registry program (Debian package docker-registry)
`

const INSTALL_REGISTRY = `The demo runs a local container registry: the CNCF distribution registry from Debian's
docker-registry package, which was not found (%BIN%). Install it and run the demo again:

  sudo apt-get install -y docker-registry
  sudo systemctl disable --now docker-registry   # the demo starts its own; the system one is not needed

Or point the demo at a registry binary you have: npm run demo -- --registry-bin /path/to/registry
`

interface Options {
  port: number
  dir: string | undefined
  keep: boolean
  registryBin: string
}

function parseOptions(argv: string[]): Options | string {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '8080' },
        dir: { type: 'string' },
        keep: { type: 'boolean', default: false },
        'registry-bin': { type: 'string', default: 'docker-registry' },
        help: { type: 'boolean', default: false },
      },
    }).values
  } catch (err) {
    return `${(err as Error).message}\n\n${USAGE}`
  }
  if (values.help) return USAGE
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    return `--port: not a port: ${values.port}\n\n${USAGE}`
  return {
    port,
    dir: values.dir as string | undefined,
    keep: values.keep === true,
    registryBin: values['registry-bin'] as string,
  }
}

/** A problem the person running the demo can fix: said in one line, without a stack. */
class DemoError extends Error {}

/** Things started so far, stopped in reverse order. */
class Stack {
  #steps: { what: string; stop: () => Promise<void> }[] = []
  push(what: string, stop: () => Promise<void>): void {
    this.#steps.push({ what, stop })
  }
  async unwind(report: (line: string) => void): Promise<boolean> {
    let clean = true
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step.stop()
      } catch (err) {
        clean = false
        report(`could not stop ${step.what}: ${(err as Error).message}`)
      }
    }
    return clean
  }
}

const out = (line = '') => process.stdout.write(`${line}\n`)
const err = (line: string) => process.stderr.write(`regent demo: ${line}\n`)

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2))
  if (typeof options === 'string') {
    ;(options === USAGE ? process.stdout : process.stderr).write(options)
    return options === USAGE ? 0 : 2
  }
  if (!(await runs(options.registryBin))) {
    process.stderr.write(INSTALL_REGISTRY.replace('%BIN%', options.registryBin))
    return 1
  }

  const stack = new Stack()
  let stopping: Promise<number> | undefined
  const stop = (why: string) => {
    if (!stopping) {
      out(`\n${why}: stopping Regent, its database and the registry…`)
      stopping = stack.unwind(err).then((clean) => {
        out(clean ? 'stopped.' : 'stopped, with the problems above.')
        return clean ? 0 : 1
      })
    }
    return stopping
  }
  let forced = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl-C while stopping: give up waiting, but still never leave the registry behind.
      if (!forced) err('stopping anyway')
      forced = true
      process.exit(130)
    }
    void stop(signal === 'SIGINT' ? 'Ctrl-C' : signal).then((code) => process.exit(code))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  try {
    const started = await startDemo(options, stack, () => stopping !== undefined)
    if (!started) return await (stopping ?? stop('interrupted'))
    await writeFile(path.join(started.dir, 'demo.json'), `${JSON.stringify(started.state, null, 2)}\n`, {
      mode: 0o600,
    })
    out(tour(started.state, started.images))
    // Runs until a signal: the handlers above stop everything and exit.
    return await new Promise<number>(() => {})
  } catch (error) {
    err(
      error instanceof ConfigError || error instanceof DemoError
        ? error.message
        : ((error as Error).stack ?? String(error)),
    )
    await stop('failed to start')
    return 1
  }
}

export interface DemoState {
  regentUrl: string
  registryUrl: string
  registryPid: number | undefined
  dir: string
  configFile: string
  logFile: string
  policyId: string
  graphiql: boolean
  console: boolean
  tokens: { variable: string; sub: string; teams: string[]; roles: string[]; what: string; token: string }[]
}

async function startDemo(
  options: Options,
  stack: Stack,
  interrupted: () => boolean,
): Promise<{ dir: string; state: DemoState; images: DemoImages } | undefined> {
  const dir = await demoFolder(options.dir)
  // The embedded PostgreSQL runs as the unprivileged `postgres` user when we are root: it must be
  // able to pass through this folder to its own.
  await chmod(dir, 0o711)
  if (!options.keep) stack.push('the demo folder', () => rm(dir, { recursive: true, force: true }))
  out(`demo folder: ${dir}`)

  const registryDir = path.join(dir, 'registry')
  await mkdir(registryDir, { recursive: true })
  const registry = new DemoRegistry({
    bin: options.registryBin,
    dir: registryDir,
    port: await freePort([options.port]),
    log: (line) => out(line),
  })
  stack.push('the registry', () => registry.stop())
  await registry.start()
  out(`registry: ${registry.url} (docker-registry, pid ${registry.pid})`)
  if (interrupted()) return undefined

  const client = new RegistryClient(
    { ...loadConfig({}, { registries: [{ name: 'local', url: registry.url }] }).registries[0]! },
    { env: {} },
  )
  const images = await pushDemoImages(client).finally(() => client.close())
  out(`pushed ${images.tags} tags in ${images.repositories} repositories`)
  if (interrupted()) return undefined

  const logFile = path.join(dir, 'regent.log')
  const destination = pino.destination({ dest: logFile, sync: false, mkdir: true })
  const logger = pino({ level: 'info', redact: { paths: LOG_REDACT, censor: '[redacted]' } }, destination)
  stack.push('the log', async () => {
    destination.flushSync()
    destination.end()
  })

  const dataDir = path.join(dir, 'regent')
  const { startEmbeddedPostgres } = await import('../db/embedded.js')
  const embedded: EmbeddedPostgres = await startEmbeddedPostgres({
    dataDir,
    port: 0,
    avoidPorts: [options.port, registry.url ? Number(new URL(registry.url).port) : 0],
    log: logger.child({ component: 'embedded-postgres' }),
  })
  stack.push('the embedded database', () => embedded.stop())
  if (interrupted()) return undefined

  const jwtSecret = randomBytes(32).toString('base64url')
  const hookScript = fileURLToPath(new URL('./hook.js', import.meta.url))
  const settings = demoConfig({
    port: options.port,
    dataDir,
    jwtSecret,
    registryUrl: registry.url,
    registryBin: options.registryBin,
    registryConfigPath: registry.configPath,
    storagePath: registry.storageDir,
    hook: (mode) => [process.execPath, hookScript, `${registry.controlUrl}/${mode}`],
  })
  const configFile = path.join(dir, 'regent.yaml')
  await writeFile(configFile, configYaml(settings))
  const config = loadConfig({}, { ...settings, databaseUrl: embedded.url })

  const app: FastifyInstance = await buildApp(config, { loggerInstance: logger })
  stack.push('Regent', () => app.close())
  await app.listen({ port: config.port, host: config.host }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EADDRINUSE') throw error
    throw new DemoError(
      `port ${config.port} is in use: npm run demo -- --port ${config.port + 1} (or --port 0)`,
    )
  })
  const port = (app.server.address() as { port: number }).port
  const regentUrl = `http://127.0.0.1:${port}`
  if (interrupted()) return undefined

  const tokens = DEMO_PEOPLE.map((person) => ({ ...person, token: demoToken(jwtSecret, person) }))
  const approver = tokens.find((t) => t.variable === 'APPROVER')!
  const created = await app.inject({
    method: 'POST',
    url: '/v1/policies',
    headers: { authorization: `Bearer ${approver.token}` },
    payload: DEMO_POLICY,
  })
  if (created.statusCode !== 201) throw new Error(`retention policy refused: ${created.body}`)

  return {
    dir,
    images,
    state: {
      regentUrl,
      registryUrl: registry.url,
      registryPid: registry.pid,
      dir,
      configFile,
      logFile,
      policyId: (created.json() as { id: string }).id,
      graphiql: config.graphql.graphiql,
      console: app.hasRoute({ method: 'GET', url: '/ui' }) || app.hasRoute({ method: 'GET', url: '/ui/' }),
      tokens,
    },
  }
}

/** A new temp folder, or the one given, which must be empty (or not exist yet). */
async function demoFolder(dir: string | undefined): Promise<string> {
  if (!dir) return mkdtemp(path.join(tmpdir(), 'regent-demo-'))
  const resolved = path.resolve(dir)
  await mkdir(resolved, { recursive: true })
  if ((await readdir(resolved)).length > 0) throw new DemoError(`--dir ${resolved} is not empty`)
  return resolved
}

/** The config as a file a person could start Regent with, minus the run's secret and database. */
function configYaml(settings: Record<string, unknown>): string {
  const { auth: _secret, ...rest } = settings
  return [
    '# The demo config. The demo also sets auth.jwtSecret (generated for this run) and databaseUrl',
    '# (its embedded PostgreSQL); everything else is here as a config file would have it.',
    toYaml(rest),
  ].join('\n')
}

/** Whether the program starts at all (it is looked up in PATH like any command). */
function runs(program: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(program, ['--version'], { stdio: 'ignore' })
    child.once('error', () => resolve(false))
    child.once('exit', () => resolve(true))
  })
}

main().then(
  (code) => process.exit(code),
  (error) => {
    err((error as Error).stack ?? String(error))
    process.exit(1)
  },
)
