import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Pool } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { MANIFEST_ACCEPT, RegistryClient } from '../src/oci/index.js'
import { mapLimit } from '../src/registries/map-limit.js'
import { signToken } from '../test/helper.js'
import { inParallel, type PushedImage, pushImage } from '../test/helpers/fixtures.js'
import { registryConfig } from '../test/helpers/registry.js'
import { log, runBench, timed } from './support.js'

/**
 * bench/delete: 1,000 tags across 20 repositories deleted (a) the seed script's way, one `curl` per
 * HEAD and per DELETE, serially; (b) at the registry's own limit, HEAD + DELETE straight at it over
 * keep-alive with CONCURRENCY in flight; (c) through Regent: request, approval (the owning team
 * needs none here), execution to completion, with the same concurrency toward the registry. Each
 * run deletes the same images, re-tagged in between (their blobs stay until GC).
 */
const REPOSITORIES = Number(process.env.BENCH_REPOSITORIES ?? 20)
const TAGS = Number(process.env.BENCH_TAGS ?? 50)
const CONCURRENCY = 8
const run = promisify(execFile)

runBench(async ({ db, registry }) => {
  const pusher = new RegistryClient(registryConfig(registry, { maxConcurrency: 16 }))
  const repos = Array.from({ length: REPOSITORIES }, (_, i) => `team/repo-${String(i).padStart(2, '0')}`)
  const jobs = repos.flatMap((repository) =>
    Array.from({ length: TAGS }, (_, j) => ({ repository, tag: `t${j}` })),
  )
  const images: PushedImage[] = []
  const pushed = await timed(() =>
    inParallel(jobs, 16, async ({ repository, tag }) => {
      images.push(await pushImage(pusher, repository, { tags: [tag], layers: 1 }))
    }),
  )
  log(`pushed ${images.length} images in ${(pushed.ms / 1000).toFixed(1)} s`)
  const retag = () =>
    inParallel(images, 16, (image) =>
      pusher.putManifest(image.repository, image.tags[0]!, image.mediaType, image.bytes),
    )
  const remaining = async () => {
    let left = 0
    await mapLimit(images, 16, async (image) => {
      if (await pusher.headManifest(image.repository, image.tags[0]!)) left++
    })
    return left
  }

  // (a) The seed script: for each tag, curl a HEAD for the digest, then curl a DELETE.
  const seed = await timed(async () => {
    for (const { repository, tags } of images) {
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
  if ((await remaining()) !== 0) throw new Error('the seed script left tags behind')
  await retag()

  // (b) The registry's own limit: HEAD + DELETE over keep-alive, CONCURRENCY in flight.
  const direct = new Pool(registry.url, { connections: CONCURRENCY })
  const limit = await timed(() =>
    mapLimit(images, CONCURRENCY, async ({ repository, tags }) => {
      const head = await direct.request({
        method: 'HEAD',
        path: `/v2/${repository}/manifests/${tags[0]}`,
        headers: { accept: MANIFEST_ACCEPT },
      })
      await head.body.dump()
      const del = await direct.request({
        method: 'DELETE',
        path: `/v2/${repository}/manifests/${head.headers['docker-content-digest']}`,
      })
      await del.body.dump()
      if (del.statusCode !== 202) throw new Error(`DELETE answered ${del.statusCode}`)
    }),
  )
  await direct.close()
  if ((await remaining()) !== 0) throw new Error('the direct run left tags behind')
  await retag()

  // (c) Regent: one request per repository; jobs.concurrency × deletions.itemConcurrency = CONCURRENCY.
  const config = loadConfig(
    {},
    {
      databaseUrl: db.url,
      logLevel: 'silent',
      auth: { jwtSecret: 'test-secret-0123456789abcdef0123456789abcdef' },
      registries: [registryConfig(registry, { name: 'bench', maxConcurrency: CONCURRENCY })],
      governance: {
        teams: [
          { name: 'team', repositories: [{ pattern: 'team/**' }], approvals: { ownRepositories: 'none' } },
        ],
      },
      worker: true,
      jobs: { concurrency: 2, registryConcurrency: 2, pollMs: 200 },
      deletions: { itemConcurrency: CONCURRENCY / 2 },
    },
  )
  const app = await buildApp(config)
  await app.ready()
  const headers = {
    authorization: `Bearer ${signToken({ sub: 'bench', groups: ['team'], roles: ['requester'] })}`,
  }
  const startedAt = performance.now()
  const regent = await timed(async () => {
    const ids = await Promise.all(
      repos.map(async (repository) => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/deletions',
          headers,
          payload: {
            registry: 'bench',
            verb: 'delete-manifest',
            reason: 'bench',
            targets: [{ repository, tagPattern: '*' }],
          },
        })
        if (res.statusCode !== 201) throw new Error(`request refused: ${res.body}`)
        return res.json().id as string
      }),
    )
    log(`  requests planned and created after ${(performance.now() - startedAt).toFixed(0)} ms`)
    for (const id of ids) {
      for (;;) {
        const state = (await app.inject({ url: `/v1/deletions/${id}`, headers })).json().state
        if (state === 'succeeded') break
        if (state === 'failed' || state === 'partially_failed') throw new Error(`deletion ${id} ${state}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  })
  await app.close()
  if ((await remaining()) !== 0) throw new Error('Regent left tags behind')
  await pusher.close()

  const rate = (ms: number) => (images.length / (ms / 1000)).toFixed(1)
  log(`tags: ${images.length} in ${REPOSITORIES} repositories, concurrency ${CONCURRENCY}`)
  log(`seed script (curl HEAD + curl DELETE, serial): ${rate(seed.ms)} tags/s`)
  log(`registry limit (HEAD + DELETE, keep-alive):   ${rate(limit.ms)} tags/s`)
  log(`regent (request, approval, execution):        ${rate(regent.ms)} tags/s`)
  log(`ratio regent / limit: ${(limit.ms / regent.ms).toFixed(2)}  (goal >= 0.8)`)
  log(`ratio regent / seed script: ${(seed.ms / regent.ms).toFixed(2)}  (goal >= 10)`)
})
