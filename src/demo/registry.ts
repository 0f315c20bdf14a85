import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'

/**
 * The demo's registry: Debian's `docker-registry` (CNCF distribution 2.8) on a loopback port, with
 * deletes enabled, and a restart into read-only mode and back on the same port and storage. That
 * restart is what docs/gc.md ("The protocol") recommends around `garbage-collect`: distribution
 * 2.8 cannot switch modes while running, a push racing the collector loses blobs, and the restart
 * also empties the in-memory blob descriptor cache that would otherwise hide collected blobs.
 *
 * The GC `before`/`after` hooks are separate processes (Regent runs them by argv); they reach this
 * process through a small control endpoint on loopback whose path carries a random secret.
 */

export interface DemoRegistryOptions {
  bin: string
  dir: string
  port: number
  log: (line: string) => void
}

export type RegistryMode = 'read-write' | 'read-only'

export class DemoRegistry {
  readonly url: string
  readonly storageDir: string
  readonly configPath: string
  readonly readOnlyConfigPath: string
  #child: ChildProcess | undefined
  #mode: RegistryMode = 'read-write'
  #control: http.Server | undefined
  #controlUrl = ''
  #restarting: Promise<void> = Promise.resolve()

  constructor(private readonly options: DemoRegistryOptions) {
    this.url = `http://127.0.0.1:${options.port}`
    this.storageDir = path.join(options.dir, 'storage')
    this.configPath = path.join(options.dir, 'registry.yml')
    this.readOnlyConfigPath = path.join(options.dir, 'registry-read-only.yml')
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  get mode(): RegistryMode {
    return this.#mode
  }

  /** `http://127.0.0.1:<port>/<secret>`; POST `/read-only` or `/read-write` to it. */
  get controlUrl(): string {
    return this.#controlUrl
  }

  async start(): Promise<void> {
    const secret = randomBytes(16).toString('hex')
    await writeFile(this.configPath, this.#yaml(false, secret))
    await writeFile(this.readOnlyConfigPath, this.#yaml(true, secret))
    await this.#spawn('read-write')
    await this.#startControl()
  }

  /** Stops the registry and restarts it in `mode` over the same storage and port. */
  switchTo(mode: RegistryMode): Promise<void> {
    // Serialised: a hook retried by its timeout must not interleave with the previous restart.
    this.#restarting = this.#restarting
      .catch(() => {})
      .then(async () => {
        if (this.#mode === mode && this.#child?.exitCode === null) return
        await this.#stopChild()
        await this.#spawn(mode)
        this.options.log(`registry restarted ${mode} (for garbage collection)`)
      })
    return this.#restarting
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#control ? this.#control.close(() => resolve()) : resolve()))
    this.#control?.closeAllConnections()
    await this.#restarting.catch(() => {})
    await this.#stopChild()
  }

  #yaml(readOnly: boolean, secret: string): string {
    return [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(this.storageDir)}`,
      '  delete:',
      '    enabled: true',
      '  cache:',
      '    blobdescriptor: inmemory',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      '    readonly:',
      `      enabled: ${readOnly}`,
      'http:',
      `  addr: 127.0.0.1:${this.options.port}`,
      `  secret: ${secret}`,
      '',
    ].join('\n')
  }

  async #spawn(mode: RegistryMode): Promise<void> {
    const config = mode === 'read-only' ? this.readOnlyConfigPath : this.configPath
    const child = spawn(this.options.bin, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4000)
    })
    let failed: Error | undefined
    child.on('error', (err) => {
      failed = err
    })
    this.#child = child
    this.#mode = mode
    const deadline = Date.now() + 20_000
    for (;;) {
      if (failed) throw new Error(`docker-registry could not be started: ${failed.message}`)
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`docker-registry exited with ${child.exitCode ?? child.signalCode}:\n${stderr}`)
      }
      try {
        const res = await request(`${this.url}/v2/`, { headersTimeout: 1000, bodyTimeout: 1000 })
        await res.body.dump()
        return
      } catch {
        if (Date.now() > deadline)
          throw new Error(`docker-registry did not answer at ${this.url}:\n${stderr}`)
        await sleep(50)
      }
    }
  }

  async #stopChild(): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    const stopped = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
    if (!stopped) {
      child.kill('SIGKILL')
      await exited
    }
  }

  async #startControl(): Promise<void> {
    const secret = randomBytes(16).toString('hex')
    const server = http.createServer((req, res) => {
      req.resume()
      const mode = req.url?.slice(secret.length + 2)
      if (req.method !== 'POST' || !req.url?.startsWith(`/${secret}/`)) {
        res.writeHead(404).end()
        return
      }
      if (mode !== 'read-only' && mode !== 'read-write') {
        res.writeHead(400).end('read-only or read-write')
        return
      }
      this.switchTo(mode).then(
        () => res.writeHead(204).end(),
        (err: Error) => res.writeHead(500).end(err.message),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    this.#control = server
    this.#controlUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/${secret}`
  }
}
