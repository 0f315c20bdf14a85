import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createServer, type Server, Socket } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { MediaTypes } from '../../src/oci/media-types.js'
import { admin, fastJobs, governance } from '../deletions/support.js'
import { build, createTestDatabase } from '../helper.js'
import { sha256 } from '../helpers/fixtures.js'
import { type RegistryOptions, registryConfig, type TestRegistry, withRegistry } from '../helpers/registry.js'

export { admin, fastJobs, governance, paula, requestDeletion, waitForState } from '../deletions/support.js'

/** The real collector of the Debian package, as the brief's executor runs it. */
export const REGISTRY_BIN = process.env.REGENT_TEST_REGISTRY_BIN ?? 'docker-registry'

export function garbageCollect(configPath: string) {
  return { kind: 'command', argv: [REGISTRY_BIN, 'garbage-collect', configPath], timeoutMs: 60_000 }
}

export interface GcSetup {
  registry: TestRegistry
  client: RegistryClient
  app: FastifyInstance
  databaseUrl: string
  config: Record<string, unknown>
}

/**
 * A registry, a database, and an app whose registry `local` has the given `gc` section (storagePath
 * and the real `docker-registry garbage-collect <config>` unless the section says otherwise).
 */
export async function setupGc(
  t: Test,
  options: {
    gc?: (registry: TestRegistry) => Record<string, unknown>
    registry?: RegistryOptions
    worker?: boolean
    jobs?: Record<string, unknown>
  } = {},
): Promise<GcSetup> {
  const registry = await withRegistry(t, options.registry)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const databaseUrl = await createTestDatabase(t)
  const gc = {
    executor: garbageCollect(registry.configPath),
    storagePath: registry.storageDir,
    quietPeriodMs: 3_600_000,
    ...options.gc?.(registry),
  }
  const config = gcAppConfig(registry.url, gc, { worker: options.worker ?? true, jobs: options.jobs ?? {} })
  const app = await build(t, { databaseUrl, config })
  return { registry, client, app, databaseUrl, config }
}

export function gcAppConfig(
  url: string,
  gc: Record<string, unknown>,
  options: { worker: boolean; jobs?: Record<string, unknown> },
): Record<string, unknown> {
  return {
    registries: [{ ...registryConfig({ url }, { name: 'local', retries: 2 }), gc }],
    governance,
    worker: options.worker,
    jobs: { ...fastJobs, ...options.jobs },
    deletions: { maxAttempts: 5 },
  }
}

// ---- images -------------------------------------------------------------------------------------

export interface Blob {
  digest: string
  size: number
  bytes: Buffer
}

export interface LayeredImage {
  repository: string
  tag: string
  digest: string
  bytes: Buffer
  mediaType: string
  config: Blob
  layers: Blob[]
}

export function randomLayer(size = 2048): Buffer {
  return randomBytes(size)
}

/**
 * An OCI image whose layers are exactly `layers` (pushed unless the registry has them: a shared
 * base layer is uploaded once per repository and then only referenced), with a config of its own.
 */
export async function pushLayered(
  client: RegistryClient,
  repository: string,
  tag: string,
  layers: Buffer[],
  configSeed = randomBytes(8).toString('hex'),
): Promise<LayeredImage> {
  const pushed: Blob[] = []
  for (const bytes of layers) {
    const result = await client.pushBlob(repository, bytes)
    pushed.push({ digest: result.digest, size: bytes.length, bytes })
  }
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { seed: configSeed } },
      rootfs: { type: 'layers', diff_ids: pushed.map((l) => l.digest) },
    }),
  )
  const config = await client.pushBlob(repository, configBytes)
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.OciManifest,
    config: { mediaType: MediaTypes.OciConfig, digest: config.digest, size: configBytes.length },
    layers: pushed.map((l) => ({ mediaType: MediaTypes.OciLayerGzip, digest: l.digest, size: l.size })),
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  await client.putManifest(repository, tag, MediaTypes.OciManifest, bytes)
  return {
    repository,
    tag,
    digest: sha256(bytes),
    bytes,
    mediaType: MediaTypes.OciManifest,
    config: { digest: config.digest, size: configBytes.length, bytes: configBytes },
    layers: pushed,
  }
}

/** Pushes the same image again (the same bytes, so the same digests), as `docker push` would. */
export async function repush(client: RegistryClient, image: LayeredImage): Promise<{ uploaded: number }> {
  let uploaded = 0
  for (const blob of [...image.layers, image.config]) {
    if (!(await client.pushBlob(image.repository, blob.bytes)).existed) uploaded++
  }
  await client.putManifest(image.repository, image.tag, image.mediaType, image.bytes)
  return { uploaded }
}

/**
 * Whole: the tag resolves to the digest, and every blob answers HEAD and its bytes come back
 * (GET, digest checked by the client). HEAD alone can be answered from a stale cache.
 */
export async function complete(client: RegistryClient, image: LayeredImage): Promise<string[]> {
  const problems: string[] = []
  const head = await client.headManifest(image.repository, image.tag)
  if (head?.digest !== image.digest) problems.push(`${image.tag} resolves to ${head?.digest ?? 'nothing'}`)
  for (const blob of [image.config, ...image.layers]) {
    if (!(await client.headBlob(image.repository, blob.digest))) problems.push(`HEAD ${blob.digest} 404`)
    else {
      const got = await client.getBlob(image.repository, blob.digest).catch((err: Error) => err)
      if (got instanceof Error) problems.push(`GET ${blob.digest}: ${got.message}`)
    }
  }
  return problems
}

/** The blob's data file in distribution's filesystem layout. */
export function blobFile(storageDir: string, digest: string): string {
  const hex = digest.split(':')[1]!
  return path.join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
}

export function hasBlobData(storageDir: string, digest: string): boolean {
  return existsSync(blobFile(storageDir, digest))
}

/** Every regular file under the storage folder with its size (independent of src/gc/storage.ts). */
export function storageListing(root: string): Map<string, number> {
  const out = new Map<string, number>()
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile()) out.set(path.relative(root, full), statSync(full).size)
    }
  }
  walk(root)
  return out
}

export function totalBytes(listing: Map<string, number>): number {
  let total = 0
  for (const size of listing.values()) total += size
  return total
}

// ---- runs ---------------------------------------------------------------------------------------

export async function requestGc(
  app: FastifyInstance,
  body: { dryRun?: boolean; deleteUntagged?: boolean } = {},
  headers: Record<string, string> = admin,
  registry = 'local',
) {
  return app.inject({ method: 'POST', url: `/v1/registries/${registry}/gc`, headers, payload: body })
}

export interface RunView {
  id: string
  state: string
  trigger: string
  dryRun: boolean
  failedStep: string | null
  error: string | null
  steps: { name: string; ok: boolean | null; output: string; startedAt: string; finishedAt: string | null }[]
  eligible: {
    markedBlobs: number | null
    blobs: number | null
    manifests: number | null
    bytes: number | null
    share: number | null
  }
  collected: { blobs: number | null; manifests: number | null }
  bytesBefore: number | null
  bytesAfter: number | null
  bytesFreed: number | null
  log?: string
  jobId: string | null
  notBefore: string
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  summary: string
}

export async function getRunView(app: FastifyInstance, id: string): Promise<RunView> {
  const res = await app.inject({ url: `/v1/gc-runs/${id}`, headers: admin })
  if (res.statusCode !== 200) throw new Error(`GET gc run ${id}: ${res.statusCode} ${res.body}`)
  return res.json() as RunView
}

/** Polls a run until it reaches one of `states`. */
export async function waitForRun(
  app: FastifyInstance,
  id: string,
  states: string[] = ['succeeded', 'failed', 'cancelled'],
  timeoutMs = 40_000,
  until: (run: RunView) => boolean = (run) => states.includes(run.state),
): Promise<RunView> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const run = await getRunView(app, id)
    if (until(run)) return run
    if (Date.now() > deadline) throw new Error(`gc run ${id} stuck: ${run.summary}\n${run.log ?? ''}`)
    await sleep(100)
  }
}

// ---- commands run by hooks ----------------------------------------------------------------------

/** `node -e <code> args…`: hooks written in JavaScript, with no shell involved. */
export function nodeCommand(code: string, ...args: string[]): string[] {
  return [process.execPath, '-e', code, ...args]
}

/** A hook that POSTs to a URL and fails unless it answers 2xx. */
export function postHook(url: string): string[] {
  return nodeCommand(
    'fetch(process.argv[1],{method:"POST"}).then(r=>process.exit(r.ok?0:1),()=>process.exit(2))',
    url,
  )
}

/** A hook that waits until a file exists (at most 30 s). */
export function waitForFileHook(file: string): string[] {
  return nodeCommand(
    'const fs=require("fs");const end=Date.now()+30000;const t=setInterval(()=>{if(fs.existsSync(process.argv[1]))process.exit(0);if(Date.now()>end)process.exit(3)},25)',
    file,
  )
}

// ---- a registry that can be restarted behind a stable address -----------------------------------

/**
 * A TCP front on a fixed port forwarding to whichever registry process is current, so Regent and
 * the test client keep one URL while the registry is restarted read-only and back (the practical
 * GC protocol for distribution 2.8). Between two processes connections are refused.
 */
export interface Front {
  url: string
  port: number
  retarget(port: number | null): void
  stop(): Promise<void>
}

export async function startFront(initial: number): Promise<Front> {
  let target: number | null = initial
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    if (target === null) {
      socket.destroy()
      return
    }
    const upstream = new Socket()
    sockets.add(upstream)
    upstream.once('close', () => sockets.delete(upstream))
    upstream.connect(target, '127.0.0.1')
    socket.pipe(upstream).pipe(socket)
    const close = () => {
      socket.destroy()
      upstream.destroy()
    }
    socket.on('error', close)
    upstream.on('error', close)
    socket.on('close', close)
    upstream.on('close', close)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    retarget(next) {
      target = next
      // Connections to the old process die with it; new ones go to the new one.
      for (const socket of sockets) socket.destroy()
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
