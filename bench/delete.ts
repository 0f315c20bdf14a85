import { execFile, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import inspector from 'node:inspector'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { Pool } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { groupBy } from '../src/lib/group-by.js'
import { MANIFEST_ACCEPT, RegistryClient } from '../src/oci/index.js'
import { mapLimit } from '../src/registries/map-limit.js'
import { signToken } from '../test/helper.js'
import { inParallel, type PushedImage, pushImage } from '../test/helpers/fixtures.js'
import { registryConfig, type TestRegistry } from '../test/helpers/registry.js'
import { countRegistryCalls, log, processCpuMs, runBench, timed } from './support.js'

/**
 * bench/delete: deleting tags (a) the seed script's way, one `curl` per HEAD and per DELETE,
 * serially; (b) at the registry's own limit, HEAD + DELETE straight at it over keep-alive with
 * CONCURRENCY in flight; (c) through Regent end to end (request, approval by the rules, execution
 * with every deletion-safety check); (d) Regent's execution alone (requests filed beforehand). For
 * Regent it counts the registry calls and the Postgres write transactions per deleted tag, and
 * compares its CPU time with the raw deleter's. Each phase deletes the same images, tagged again in
 * between (their blobs stay until GC). A raw run of the safe protocol's own calls (the plan's look,
 * the pre-wave look, the DELETEs, one writer per repository) shows what those calls alone allow.
 *
 * Shapes (BENCH_SHAPE): `wide` 1,000 tags in 20 repositories; `narrow` 10 tags from one 1,000-tag
 * repository; `large` 5,000 tags in 5 repositories (peak RSS). `all` (default) runs each in a
 * process of its own, so each peak RSS is its own.
 */
const CONCURRENCY = 8
/** BENCH_LOG_LEVEL=warn (say) shows what Regent logs during the phases on stderr. */
const appOptions = { logger: process.env.BENCH_LOG_LEVEL ? { level: process.env.BENCH_LOG_LEVEL } : false }
const run = promisify(execFile)

interface Shape {
  repositories: number
  tagsPerRepository: number
  /** Tags deleted per repository (all of them unless set). */
  deleted?: number
  seed: boolean
}

const SHAPES: Record<string, Shape> = {
  wide: { repositories: 20, tagsPerRepository: 50, seed: true },
  // The first ten tags (t0000 … t0009), which the bench's requests name with /t000[0-9]/.
  narrow: { repositories: 1, tagsPerRepository: 1000, deleted: 10, seed: false },
  large: { repositories: 5, tagsPerRepository: 1000, seed: false },
}

const shapeName = process.env.BENCH_SHAPE ?? 'all'
if (shapeName === 'all') {
  for (const name of Object.keys(SHAPES)) {
    const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_SHAPE: name },
    })
    if (child.status !== 0) process.exit(child.status ?? 1)
  }
} else {
  const shape = SHAPES[shapeName]
  if (!shape) throw new Error(`BENCH_SHAPE must be one of all, ${Object.keys(SHAPES).join(', ')}`)
  runBench((ctx) => bench(shapeName, shape, ctx))
}

/**
 * With BENCH_PROFILE=<dir>, writes a CPU profile and an allocation profile of the phase there
 * (`.cpuprofile`, `.heapprofile`: open them in Chrome DevTools).
 */
async function profiled<T>(label: string, work: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE
  if (!dir) return work()
  const session = new inspector.Session()
  session.connect()
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
    )
  await post('Profiler.enable')
  await post('Profiler.start')
  // Allocations, collected ones included: where the heap's churn (and so the RSS peak) comes from.
  await post('HeapProfiler.enable')
  await post('HeapProfiler.startSampling', {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  })
  try {
    return await work()
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown }
    writeFileSync(path.join(dir, `${shapeName}-${label}.cpuprofile`), JSON.stringify(profile))
    const { profile: heap } = (await post('HeapProfiler.stopSampling')) as { profile: unknown }
    writeFileSync(path.join(dir, `${shapeName}-${label}.heapprofile`), JSON.stringify(heap))
    session.disconnect()
  }
}

/** A full collection, where node runs with --expose-gc (npm run bench:delete starts it so). */
function collectGarbage(): void {
  const { gc } = globalThis as { gc?: () => void }
  gc?.()
}

/** Write transactions of the whole server so far: a transaction gets an id only when it writes. */
async function writeTransactions(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const { rows } = await client.query<{ xmax: string }>(
    'SELECT txid_snapshot_xmax(txid_current_snapshot())::text AS xmax',
  )
  await client.end()
  return Number(rows[0]!.xmax)
}

async function bench(
  name: string,
  shape: Shape,
  { db, registry }: { db: { url: string; cpuMs?: () => number }; registry: TestRegistry },
) {
  const calls = countRegistryCalls(registry)
  const pusher = new RegistryClient(registryConfig(registry, { maxConcurrency: 16 }))
  const repos = Array.from(
    { length: shape.repositories },
    (_, i) => `team/repo-${String(i).padStart(2, '0')}`,
  )
  const all = repos.flatMap((repository) =>
    Array.from({ length: shape.tagsPerRepository }, (_, j) => ({
      repository,
      tag: `t${String(j).padStart(4, '0')}`,
    })),
  )
  const images: PushedImage[] = []
  const pushed = await timed(() =>
    inParallel(all, 16, async ({ repository, tag }) => {
      images.push(await pushImage(pusher, repository, { tags: [tag], layers: 1 }))
    }),
  )
  const doomed = images.filter((image) => Number(image.tags[0]!.slice(1)) < (shape.deleted ?? Infinity))
  log(
    `\n[${name}] pushed ${images.length} images in ${(pushed.ms / 1000).toFixed(1)} s; deleting ${doomed.length}`,
  )
  const retag = () =>
    inParallel(doomed, 16, (image) =>
      pusher.putManifest(image.repository, image.tags[0]!, image.mediaType, image.bytes),
    )
  const remaining = async () => {
    let left = 0
    await mapLimit(doomed, 16, async (image) => {
      if (await pusher.headManifest(image.repository, image.tags[0]!)) left++
    })
    return left
  }
  const phase = async <T>(work: () => Promise<T>) => {
    // The benchmark's own garbage (pushes, the raw phase) is collected first where node was started
    // with --expose-gc (npm run bench:delete does), so the peak below is Regent's work on top of a
    // settled heap rather than whenever V8 last happened to collect.
    collectGarbage()
    const before = {
      calls: calls.total,
      slotMs: calls.slotMs,
      registryCpuMs: processCpuMs(registry.pid),
      databaseCpuMs: db.cpuMs?.() ?? 0,
      cpu: process.cpuUsage(),
      xids: await writeTransactions(db.url),
    }
    let peakRss = process.memoryUsage.rss()
    let peakHeap = process.memoryUsage().heapUsed
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage.rss())
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)
    }, 20)
    const { ms, result } = await timed(work).finally(() => clearInterval(sampler))
    const cpu = process.cpuUsage(before.cpu)
    const xids = (await writeTransactions(db.url)) - before.xids - 1
    return {
      ms,
      result,
      calls: calls.total - before.calls,
      /** Registry calls in flight, on average over the phase. */
      busySlots: (calls.slotMs - before.slotMs) / ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      registryCpuMs: processCpuMs(registry.pid) - before.registryCpuMs,
      databaseCpuMs: (db.cpuMs?.() ?? 0) - before.databaseCpuMs,
      xids,
      peakRss,
      peakHeap,
    }
  }

  // (a) The seed script: for each tag, curl a HEAD for the digest, then curl a DELETE.
  let seedMs: number | undefined
  if (shape.seed) {
    seedMs = (
      await timed(async () => {
        for (const { repository, tags } of doomed) {
          const head = await run('curl', [
            '-sSI',
            ...MANIFEST_ACCEPT.split(',').flatMap((type) => ['-H', `Accept: ${type.trim()}`]),
            `${registry.url}/v2/${repository}/manifests/${tags[0]}`,
          ])
          const digest = /docker-content-digest:\s*(\S+)/i.exec(head.stdout)?.[1]
          if (!digest) throw new Error(`no digest for ${repository}:${tags[0]}`)
          await run('curl', [
            '-sS',
            '-o',
            '/dev/null',
            '-X',
            'DELETE',
            `${registry.url}/v2/${repository}/manifests/${digest}`,
          ])
        }
      })
    ).ms
    if ((await remaining()) !== 0) throw new Error('the seed script left tags behind')
    await retag()
  }

  // (b) The registry's own limit: HEAD + DELETE over keep-alive, CONCURRENCY in flight.
  const direct = new Pool(registry.url, { connections: CONCURRENCY })
  const call = async (method: 'GET' | 'HEAD' | 'DELETE', url: string) => {
    const res = await direct.request({
      method,
      path: url,
      headers: method === 'DELETE' ? {} : { accept: MANIFEST_ACCEPT },
      reset: false,
    })
    await res.body.dump()
    return res
  }
  const deleteDigest = async (repository: string, digest: unknown) => {
    const res = await call('DELETE', `/v2/${repository}/manifests/${digest}`)
    if (res.statusCode !== 202) throw new Error(`DELETE answered ${res.statusCode}`)
  }
  const headAndDelete = async ({ repository, tags }: PushedImage) => {
    const head = await call('HEAD', `/v2/${repository}/manifests/${tags[0]}`)
    await deleteDigest(repository, head.headers['docker-content-digest'])
  }
  const raw = await phase(() => mapLimit(doomed, CONCURRENCY, headAndDelete))
  if ((await remaining()) !== 0) throw new Error('the direct run left tags behind')
  await retag()
  // (b') The same, but one DELETE at a time per repository (repositories in parallel, up to
  // CONCURRENCY), the rule Regent keeps because concurrent deletes in one repository race inside
  // distribution: how much of the raw figure that rule alone costs.
  const byRepository = groupBy(doomed, (image) => image.repository)
  const rawOneWriter = await phase(() =>
    mapLimit([...byRepository.values()], CONCURRENCY, async (images) => {
      for (const image of images) await headAndDelete(image)
    }),
  )
  if ((await remaining()) !== 0) throw new Error('the direct run left tags behind')
  await retag()
  // (b'') The calls of Regent's safe protocol, made raw, with no database and no Regent: the plan
  // (a listing per repository, a GET by tag for each doomed tag, a HEAD of every other tag for the
  // tags that would vanish with a digest), then per repository one writer: a listing and a HEAD of
  // every tag (the pre-wave verification), the DELETEs one at a time. What Regent end to end could
  // reach if its own work and PostgreSQL's cost nothing. It looks once per repository, as Regent
  // does when a repository's items fit in one wave (the wide shape); with more (the large shape,
  // up to four waves per repository) Regent makes more calls than this line.
  const allByRepository = groupBy(images, (image) => image.repository)
  const lookAtRepository = async (repository: string, get: Set<PushedImage>) => {
    await call('GET', `/v2/${repository}/tags/list`)
    const digests = new Map<PushedImage, string>()
    await mapLimit(allByRepository.get(repository) ?? [], CONCURRENCY, async (image) => {
      const res = await call(get.has(image) ? 'GET' : 'HEAD', `/v2/${repository}/manifests/${image.tags[0]}`)
      digests.set(image, String(res.headers['docker-content-digest']))
    })
    return digests
  }
  const safeProtocol = await phase(async () => {
    const doomedSet = new Set(doomed)
    await mapLimit([...byRepository.keys()], CONCURRENCY, (repository) =>
      lookAtRepository(repository, doomedSet),
    )
    await mapLimit([...byRepository], CONCURRENCY, async ([repository, images]) => {
      const digests = await lookAtRepository(repository, new Set())
      for (const image of images) await deleteDigest(repository, digests.get(image))
    })
  })
  if ((await remaining()) !== 0) throw new Error('the safe-protocol run left tags behind')
  await retag()
  await direct.close()

  // (c) and (d) Regent: one request per repository.
  const settings = {
    databaseUrl: db.url,
    logLevel: 'silent',
    auth: { jwtSecret: 'test-secret-0123456789abcdef0123456789abcdef' },
    registries: [registryConfig(registry, { name: 'bench', maxConcurrency: CONCURRENCY, retries: 2 })],
    governance: {
      teams: [
        { name: 'team', repositories: [{ pattern: 'team/**' }], approvals: { ownRepositories: 'none' } },
      ],
    },
    worker: true,
    jobs: { concurrency: CONCURRENCY, registryConcurrency: CONCURRENCY, pollMs: 200 },
    deletions: { repositoryConcurrency: CONCURRENCY },
  }
  const config = loadConfig({}, settings)
  const headers = {
    authorization: `Bearer ${signToken({ sub: 'bench', groups: ['team'], roles: ['requester'] })}`,
  }
  const targets = (repository: string) =>
    shape.deleted ? [{ repository, tagPattern: '/t000[0-9]/' }] : [{ repository, tagPattern: '*' }]
  const fileAll = async (app: Awaited<ReturnType<typeof buildApp>>) =>
    Promise.all(
      repos.map(async (repository) => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/deletions',
          headers,
          payload: {
            registry: 'bench',
            verb: 'delete-manifest',
            reason: 'bench',
            targets: targets(repository),
          },
        })
        if (res.statusCode !== 201) throw new Error(`request refused: ${res.body}`)
        if (res.json().plan.items.length !== doomed.length / repos.length)
          throw new Error(`the plan has ${res.json().plan.items.length} items`)
        return res.json().id as string
      }),
    )
  const waitAll = async (app: Awaited<ReturnType<typeof buildApp>>, ids: string[]) => {
    for (const id of ids) {
      for (;;) {
        const state = (await app.inject({ url: `/v1/deletions/${id}?view=summary`, headers })).json().state
        if (state === 'succeeded') break
        if (state === 'failed' || state === 'partially_failed') throw new Error(`deletion ${id} ${state}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }

  const app = await buildApp(config, appOptions)
  await app.ready()
  collectGarbage()
  const rssBeforeRegent = process.memoryUsage.rss()
  const endToEnd = await phase(() => profiled('end-to-end', async () => waitAll(app, await fileAll(app))))
  await app.close()
  if ((await remaining()) !== 0) throw new Error('Regent left tags behind')
  await retag()

  // (d) Execution alone: the requests are filed first, needing one approval each; the phase starts
  // with the approvals (twenty calls), so what it measures is execution on a worker already up.
  const approving = loadConfig(
    {},
    {
      ...settings,
      governance: {
        teams: [{ name: 'team', repositories: [{ pattern: 'team/**' }] }],
        approvals: { default: { count: 1, from: 'owning-team-approvers' } },
      },
    },
  )
  const approver = {
    authorization: `Bearer ${signToken({ sub: 'boss', groups: ['team'], roles: ['approver'] })}`,
  }
  const worker = await buildApp(approving, appOptions)
  await worker.ready()
  const ids = await fileAll(worker)
  const execution = await phase(async () => {
    await profiled('execution', async () => {
      for (const id of ids) {
        const res = await worker.inject({
          method: 'POST',
          url: `/v1/deletions/${id}/approvals`,
          headers: approver,
          payload: { decision: 'approve' },
        })
        if (res.json().state !== 'queued') throw new Error(`not approved: ${res.body}`)
      }
      await waitAll(worker, ids)
    })
  })
  await worker.close()
  if ((await remaining()) !== 0) throw new Error('Regent left tags behind')
  await pusher.close()

  const n = doomed.length
  const rate = (ms: number) => `${(n / (ms / 1000)).toFixed(1)} tags/s`
  const per = (x: number) => (x / n).toFixed(2)
  if (seedMs !== undefined) log(`seed script (curl HEAD + curl DELETE, serial):   ${rate(seedMs)}`)
  log(
    `registry limit (HEAD + DELETE, keep-alive, ×${CONCURRENCY}): ${rate(raw.ms)}  (${per(raw.calls)} calls/tag, ${raw.busySlots.toFixed(1)} in flight on average, CPU ${raw.cpuMs.toFixed(0)} ms)`,
  )
  log(
    `raw, one writer per repository:                 ${rate(rawOneWriter.ms)}  (${rawOneWriter.busySlots.toFixed(1)} in flight on average)`,
  )
  log(
    `raw, the safe protocol's calls (no Regent, no DB): ${rate(safeProtocol.ms)}  (${per(safeProtocol.calls)} calls/tag, ${safeProtocol.busySlots.toFixed(1)} in flight on average, CPU ${safeProtocol.cpuMs.toFixed(0)} ms)`,
  )
  log(
    `regent end to end (plan, approval, execution):  ${rate(endToEnd.ms)}  (${per(endToEnd.calls)} calls/tag, ${endToEnd.busySlots.toFixed(1)} in flight on average, ${per(endToEnd.xids)} write transactions/tag, CPU ${endToEnd.cpuMs.toFixed(0)} ms)`,
  )
  log(
    `regent execution only:                          ${rate(execution.ms)}  (${per(execution.calls)} calls/tag, ${execution.busySlots.toFixed(1)} in flight on average, ${per(execution.xids)} write transactions/tag, CPU ${execution.cpuMs.toFixed(0)} ms)`,
  )
  log(`ratio regent end to end / limit: ${(raw.ms / endToEnd.ms).toFixed(2)}  (goal >= 0.7, stretch 0.8)`)
  log(`ratio regent execution / limit:  ${(raw.ms / execution.ms).toFixed(2)}  (goal >= 0.9)`)
  log(
    `ratio regent execution / raw with one writer per repository: ${(rawOneWriter.ms / execution.ms).toFixed(2)}`,
  )
  log(
    `ratio the safe protocol's calls alone / limit: ${(raw.ms / safeProtocol.ms).toFixed(2)}  (what end to end could reach if Regent and PostgreSQL cost nothing)`,
  )
  if (seedMs !== undefined)
    log(`ratio regent end to end / seed:  ${(seedMs / endToEnd.ms).toFixed(2)}  (goal >= 5)`)
  const perTag = (ms: number) => `${(ms / n).toFixed(2)} ms`
  log(
    `CPU per tag, raw / regent end to end / execution only: registry ${perTag(raw.registryCpuMs)} / ${perTag(endToEnd.registryCpuMs)} / ${perTag(execution.registryCpuMs)}; deleter process ${perTag(raw.cpuMs)} / ${perTag(endToEnd.cpuMs)} / ${perTag(execution.cpuMs)}${db.cpuMs ? `; PostgreSQL ${perTag(raw.databaseCpuMs)} / ${perTag(endToEnd.databaseCpuMs)} / ${perTag(execution.databaseCpuMs)}` : ''}`,
  )
  log(
    `CPU the safe protocol's calls alone / raw deleter: ${(safeProtocol.cpuMs / raw.cpuMs).toFixed(2)}  (HTTP alone, before any of Regent's own work)`,
  )
  log(`CPU regent end to end / raw deleter: ${(endToEnd.cpuMs / raw.cpuMs).toFixed(2)}  (goal <= 1.5)`)
  // The process also holds the benchmark's own pushes and the seed phase; the sampled figure is the
  // memory while Regent works (its phases, the pushed images' records still held).
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
  log(
    `peak RSS while Regent works (sampled every 20 ms): ${mb(Math.max(endToEnd.peakRss, execution.peakRss))}  (goal < 300 MB; ${mb(rssBeforeRegent)} before Regent's first phase)`,
  )
  log(
    `peak V8 heap in use while Regent works: ${mb(Math.max(endToEnd.peakHeap, execution.peakHeap))}  (what the rest of RSS is: code, buffers, and heap V8 has not yet returned)`,
  )
  log(`peak RSS of this process, pushes and seed included: ${mb(process.resourceUsage().maxRSS * 1024)}`)
}
