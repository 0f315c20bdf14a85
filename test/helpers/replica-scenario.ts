import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { createSigner } from 'fast-jwt'
import pg from 'pg'
import { stringify as toYaml } from 'yaml'
import { freePort } from '../../src/db/embedded.js'
import { RegistryClient } from '../../src/oci/index.js'
import { MediaTypes } from '../../src/oci/media-types.js'
import { mapLimit } from '../../src/registries/map-limit.js'
import { type RunningChild, runNode } from '../helpers/child.js'
import { startDebianPostgres } from '../helpers/debian-postgres.js'
import { sha256 } from '../helpers/fixtures.js'
import { subscribeGraphql } from '../helpers/graphql-ws.js'
import { registryConfig, startRegistry } from '../helpers/registry.js'

/**
 * Several replicas, one dying: API replicas (`REGENT_WORKER=off`) and worker replicas of the
 * compiled server (`node dist/server.js`, as the image runs it) on one PostgreSQL of Debian's
 * postgresql-15 package, in front of one real docker-registry with its access log on. Deletions
 * are filed round-robin through the API replicas while no worker runs yet, every request is
 * watched by a GraphQL subscription on another API replica than the one that filed it, then the
 * workers start and one of them is SIGKILLed while it holds running jobs. The result says what the
 * registry saw (every DELETE and its status), what the audit log holds, which GC runs there were,
 * and what each subscription streamed, for the test to judge and the benchmark to print.
 */

export interface ScenarioOptions {
  repositories: number
  tagsPerRepository: number
  apiReplicas: number
  workers: number
  /** SIGKILL a worker once this share of all items is deleted (and it holds a running job). */
  killAtShare: number
  log?: (line: string) => void
}

export interface ScenarioResult {
  items: number
  requests: {
    id: string
    filedOn: number
    watchedOn: number
    finalState: string | undefined
    deletedSeen: number
    updates: number
  }[]
  itemStates: Record<string, number>
  /** Every DELETE of a manifest the registry answered: digest → statuses in order. */
  deletes: Map<string, number[]>
  /** Digests the plans pinned, one per item. */
  plannedDigests: string[]
  auditItemEvents: { deletionId: string; position: number; digest: string }[]
  auditChainOk: boolean
  gcRuns: { id: string; trigger: string; state: string; bytesFreed: number | null }[]
  gcWatched: { replica: number; finalState: string | undefined; steps: string[] }
  kill:
    | {
        atDeleted: number
        heldJobs: number
        /** Items of the held jobs whose "DELETE sent" marker was committed but not their outcome. */
        sentUnfinished: number
        jobsTakenOver: number
      }
    | undefined
  timings: { pushMs: number; fileMs: number; executeMs: number; gcMs: number }
}

const TOKEN_SECRET = randomBytes(32).toString('hex')
const serverJs = path.join(repositoryRoot(), 'dist/server.js')
const TERMINAL = ['succeeded', 'partially_failed', 'failed']

function token(claims: Record<string, unknown>): string {
  return `Bearer ${createSigner({ key: TOKEN_SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })(claims)}`
}

interface Replica extends RunningChild {
  port: number
  role: 'api' | 'worker'
}

export async function runReplicaScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {})
  const cleanup: (() => Promise<unknown>)[] = []
  const replicas: Replica[] = []
  try {
    const postgres = await startDebianPostgres()
    cleanup.push(postgres.stop)
    const admin = new pg.Client({ connectionString: postgres.adminUrl })
    await admin.connect()
    await admin.query('CREATE DATABASE regent')
    await admin.end()
    const databaseUrl = postgres.urlFor('regent')
    const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
    cleanup.push(() => db.end())

    let accessLog = ''
    const registry = await startRegistry({
      accessLog: true,
      onOutput: (text) => {
        accessLog += text
      },
    })
    cleanup.push(registry.stop)
    const client = new RegistryClient(registryConfig(registry, { maxConcurrency: 16 }))
    cleanup.push(() => client.close())

    // Every tag its own manifest (its own config blob), so each item is one digest to DELETE; one
    // `keep` tag per repository stays, for the GC's verification and a registry that is not empty.
    let started = performance.now()
    const repositories = Array.from(
      { length: options.repositories },
      (_, i) => `load/r${String(i).padStart(2, '0')}`,
    )
    for (const repository of repositories) {
      const layer = randomBytes(4096)
      await client.pushBlob(repository, layer)
      const tags = [...Array.from({ length: options.tagsPerRepository }, (_, i) => `t-${i}`), 'keep']
      await mapLimit(tags, 16, async (tag) => {
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag, repository }))
        await client.pushBlob(repository, config)
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaTypes.OciManifest,
            config: { mediaType: MediaTypes.OciConfig, digest: sha256(config), size: config.length },
            layers: [{ mediaType: MediaTypes.OciLayerGzip, digest: sha256(layer), size: layer.length }],
          }),
        )
        await client.putManifest(repository, tag, MediaTypes.OciManifest, manifest)
      })
    }
    const pushMs = performance.now() - started
    const items = options.repositories * options.tagsPerRepository
    log(`pushed ${items + options.repositories} tags in ${options.repositories} repositories (${ms(pushMs)})`)

    const configFile = path.join(registry.dir, 'regent.yaml')
    await writeFile(
      configFile,
      toYaml({
        registries: [
          {
            name: 'local',
            url: registry.url,
            maxConcurrency: 16,
            gc: {
              executor: {
                kind: 'command',
                argv: ['docker-registry', 'garbage-collect', registry.configPath],
              },
              storagePath: registry.storageDir,
              // Longer than a dead worker's lease, so the burst, the crash and the takeover are one
              // burst: one GC after it.
              quietPeriodMs: 8000,
            },
          },
        ],
        governance: {
          teams: [
            { name: 'load', repositories: [{ pattern: 'load/**' }], approvals: { ownRepositories: 'none' } },
          ],
        },
        jobs: { leaseMs: 3000, heartbeatMs: 500, pollMs: 500, concurrency: 4, registryConcurrency: 4 },
        deletions: { repositoryConcurrency: 8 },
        database: { poolMax: 10 },
      }),
    )
    const start = async (role: 'api' | 'worker') => {
      const port = await freePort()
      const replica: Replica = {
        ...runNode([serverJs], {
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            DATABASE_URL: databaseUrl,
            REGENT_CONFIG: configFile,
            REGENT_JWT_SECRET: TOKEN_SECRET,
            REGENT_WORKER: role === 'api' ? 'off' : 'on',
            PORT: String(port),
            HOST: '127.0.0.1',
            LOG_LEVEL: 'warn',
          },
        }),
        port,
        role,
      }
      replicas.push(replica)
      return replica
    }
    const api = await Promise.all(Array.from({ length: options.apiReplicas }, () => start('api')))
    await Promise.all(api.map(waitReady))
    log(`${api.length} API replicas ready (REGENT_WORKER=off), migrated by whichever got the lock first`)

    // Filed round-robin through the API replicas; queued, since no worker runs yet.
    started = performance.now()
    const requester = token({ sub: 'loader', groups: ['load'], roles: ['requester'] })
    const filed: { id: string; filedOn: number; digests: string[] }[] = []
    for (const [i, repository] of repositories.entries()) {
      const replica = api[i % api.length]!
      const res = await fetch(`http://127.0.0.1:${replica.port}/v1/deletions`, {
        method: 'POST',
        headers: { authorization: requester, 'content-type': 'application/json' },
        body: JSON.stringify({
          registry: 'local',
          verb: 'delete-manifest',
          targets: [{ repository, tagPattern: 't-*' }],
          reason: 'load test',
        }),
      })
      const body = (await res.json()) as { id: string; state: string; plan: { items: { digest: string }[] } }
      if (res.status !== 201) throw new Error(`request ${i}: ${res.status} ${JSON.stringify(body)}`)
      filed.push({ id: body.id, filedOn: i % api.length, digests: body.plan.items.map((x) => x.digest) })
    }
    const fileMs = performance.now() - started
    log(`filed ${filed.length} requests of ${options.tagsPerRepository} tags round-robin (${ms(fileMs)})`)

    // Each request watched on another API replica than the one that filed it.
    const viewer = token({ sub: 'watcher', groups: ['load'], roles: ['viewer'] })
    const subscribed: Promise<void>[] = []
    const watches = filed.map((request) => {
      const watchedOn = (request.filedOn + 1) % api.length
      let ack!: () => void
      subscribed.push(new Promise<void>((resolve) => (ack = resolve)))
      const result = subscribeGraphql({
        port: api[watchedOn]!.port,
        authorization: viewer,
        query: 'subscription ($id: ID!) { deletionUpdated(id: $id) { id state progress { deleted total } } }',
        variables: { id: request.id },
        onSubscribed: ack,
        until: (data) => TERMINAL.includes((data.deletionUpdated as { state: string }).state),
        timeoutMs: 600_000,
      })
      return { request, watchedOn, result }
    })
    await Promise.all(subscribed)
    // The ack means the subscribe message was sent; give the replicas a moment to register them.
    await sleep(500)

    started = performance.now()
    const workers = await Promise.all(Array.from({ length: options.workers }, () => start('worker')))
    log(`${workers.length} workers started`)
    // Whichever worker holds running deletion jobs once the share is reached dies with them.
    let kill: ScenarioResult['kill']
    let killedJobs: string[] = []
    for (;;) {
      const { rows } = await db.query<{ deleted: number; running: { id: string; locked_by: string }[] }>(
        `SELECT (SELECT count(*)::int FROM deletion_items WHERE state = 'deleted') AS deleted,
                (SELECT coalesce(json_agg(json_build_object('id', id, 'locked_by', locked_by)), '[]') FROM jobs
                  WHERE state = 'running' AND kind = 'deletion.execute') AS running`,
      )
      const { deleted, running } = rows[0]!
      const victim = workers.find((w) => running.some((j) => j.locked_by.includes(`-${w.child.pid}-`)))
      if (victim && deleted >= items * options.killAtShare) {
        victim.child.kill('SIGKILL')
        await victim.exited
        // Read again after the death: a job the victim finished between the query above and the
        // signal was not held when it died, and no one needs to take it over.
        const { rows: held } = await db.query<{ id: string }>(
          `SELECT id FROM jobs WHERE state = 'running' AND kind = 'deletion.execute' AND locked_by LIKE $1`,
          [`%-${victim.child.pid}-%`],
        )
        killedJobs = held.map((j) => j.id)
        const { rows: sent } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM deletion_items i JOIN deletion_requests r ON r.id = i.deletion_id
           WHERE r.job_id = ANY($1::uuid[]) AND i.state = 'pending' AND i.delete_sent_at IS NOT NULL`,
          [killedJobs],
        )
        kill = {
          atDeleted: deleted,
          heldJobs: killedJobs.length,
          sentUnfinished: sent[0]!.n,
          jobsTakenOver: 0,
        }
        log(
          `SIGKILLed worker pid ${victim.child.pid} at ${deleted}/${items} items, holding ${killedJobs.length} job(s)`,
        )
        break
      }
      if (deleted >= items) break
      await sleep(50)
    }
    // Finished is what the database says; the subscriptions then have a little while to stream
    // it. A stuck run fails here with the requests' and jobs' states rather than a silent hang.
    await untilAllFinished(
      db,
      filed.map((request) => request.id),
      workers,
    )
    const executeMs = performance.now() - started
    const grace = sleep(STREAM_GRACE_MS, undefined, { ref: false }).then(() => ({
      updates: [],
      error: 'no final update streamed',
    }))
    const watched = await Promise.all(
      watches.map((w) =>
        Promise.race([w.result.catch((err: Error) => ({ updates: [], error: err.message })), grace]),
      ),
    )
    log(
      `all ${filed.length} requests finished (${ms(executeMs)}, ${Math.round(items / (executeMs / 1000))} items/s)`,
    )
    if (kill) {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::uuid[]) AND state = 'succeeded' AND attempts >= 2`,
        [killedJobs],
      )
      kill.jobsTakenOver = rows[0]!.n
    }

    // The coalesced GC, watched from the last API replica.
    started = performance.now()
    const { rows: pending } = await db.query<{ id: string }>(
      `SELECT id FROM gc_runs WHERE registry = 'local' ORDER BY created_at LIMIT 1`,
    )
    const adminToken = token({ sub: 'root', roles: ['admin'] })
    const gcReplica = api.length - 1
    const gcWatch = pending[0]
      ? await subscribeGraphql({
          port: api[gcReplica]!.port,
          authorization: adminToken,
          query: 'subscription ($id: ID!) { gcRunUpdated(id: $id) { id state steps { name ok } } }',
          variables: { id: pending[0].id },
          until: (data) => ['succeeded', 'failed'].includes((data.gcRunUpdated as { state: string }).state),
          timeoutMs: 120_000,
        })
      : { updates: [] }
    const gcMs = performance.now() - started
    const lastGc = gcWatch.updates.at(-1)?.gcRunUpdated as
      | { state: string; steps: { name: string; ok: boolean | null }[] }
      | undefined
    log(`GC ${lastGc?.state ?? 'not seen'} (${ms(gcMs)} after the last deletion finished)`)
    // Anything a late deletion would have coalesced into a second run has had time to show up.
    await sleep(1000)

    const verify = await fetch(`http://127.0.0.1:${api[0]!.port}/v1/audit/verify`, {
      headers: { authorization: adminToken },
    })
    const auditChainOk = ((await verify.json()) as { ok: boolean }).ok
    const { rows: states } = await db.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM deletion_items GROUP BY state',
    )
    const { rows: events } = await db.query<{ deletion_id: string; position: number; digest: string }>(
      `SELECT deletion_id::text, (details->>'itemPosition')::int AS position, digest
         FROM audit_events WHERE action = 'manifest.deleted'`,
    )
    const { rows: runs } = await db.query<{
      id: string
      trigger: string
      state: string
      freed: string | null
    }>(
      `SELECT id::text, trigger, state, (bytes_before - bytes_after)::text AS freed FROM gc_runs ORDER BY created_at`,
    )

    await Promise.all(
      replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map(stop),
    )
    await sleep(200) // the registry's last log lines
    return {
      items,
      requests: filed.map((request, i) => {
        const updates = watched[i]!.updates.map(
          (u) => u.deletionUpdated as { state: string; progress: { deleted: number } },
        )
        return {
          id: request.id,
          filedOn: request.filedOn,
          watchedOn: watches[i]!.watchedOn,
          finalState: updates.at(-1)?.state,
          deletedSeen: updates.at(-1)?.progress.deleted ?? 0,
          updates: updates.length,
        }
      }),
      itemStates: Object.fromEntries(states.map((s) => [s.state, s.n])),
      deletes: manifestDeletes(accessLog),
      plannedDigests: filed.flatMap((r) => r.digests),
      auditItemEvents: events.map((e) => ({
        deletionId: e.deletion_id,
        position: e.position,
        digest: e.digest,
      })),
      auditChainOk,
      gcRuns: runs.map((r) => ({
        id: r.id,
        trigger: r.trigger,
        state: r.state,
        bytesFreed: r.freed === null ? null : Number(r.freed),
      })),
      gcWatched: {
        replica: gcReplica,
        finalState: lastGc?.state,
        steps: (lastGc?.steps ?? []).map((s) => `${s.name}:${s.ok}`),
      },
      kill,
      timings: { pushMs, fileMs, executeMs, gcMs },
    }
  } finally {
    for (const replica of replicas) replica.child.kill('SIGKILL')
    for (const step of cleanup.reverse()) await step().catch(() => {})
  }
}

/** distribution's access log (combined format): `"DELETE /v2/<repo>/manifests/<digest> HTTP/1.1" 202`. */
function manifestDeletes(log: string): Map<string, number[]> {
  const deletes = new Map<string, number[]>()
  for (const match of log.matchAll(
    /"DELETE \/v2\/\S+\/manifests\/(sha256:[0-9a-f]{64}) HTTP\/[\d.]+" (\d{3})/g,
  )) {
    const statuses = deletes.get(match[1]!) ?? []
    statuses.push(Number(match[2]))
    deletes.set(match[1]!, statuses)
  }
  return deletes
}

/** How long a subscription may lag behind the database saying its request finished. */
const STREAM_GRACE_MS = 20_000
/** The execution's bound: a minute for a few hundred items on a loaded 2-core machine is generous. */
const EXECUTION_DEADLINE_MS = 120_000

async function untilAllFinished(db: pg.Pool, ids: string[], workers: Replica[]): Promise<void> {
  const deadline = Date.now() + EXECUTION_DEADLINE_MS
  for (;;) {
    const { rows } = await db.query<{ id: string; state: string }>(
      'SELECT id::text, state FROM deletion_requests WHERE id = ANY($1::uuid[])',
      [ids],
    )
    if (rows.every((row) => TERMINAL.includes(row.state))) return
    if (Date.now() > deadline) {
      const { rows: jobs } = await db.query(
        `SELECT id, state, attempts, locked_by, locked_until, last_error FROM jobs WHERE kind = 'deletion.execute'`,
      )
      throw new Error(
        `requests still unfinished after ${EXECUTION_DEADLINE_MS} ms: ${JSON.stringify(rows)}\njobs: ${JSON.stringify(jobs)}\n${workers.map((w) => w.output()).join('\n')}`,
      )
    }
    await sleep(200)
  }
}

async function waitReady(replica: Replica): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (replica.child.exitCode !== null) throw new Error(`replica exited:\n${replica.output()}`)
    const res = await fetch(`http://127.0.0.1:${replica.port}/readyz`).catch(() => undefined)
    if (res?.status === 200) return
    if (Date.now() > deadline) throw new Error(`replica not ready:\n${replica.output()}`)
    await sleep(200)
  }
}

async function stop(replica: Replica): Promise<void> {
  replica.child.kill('SIGTERM')
  const { code } = await replica.exited
  if (code !== 0) throw new Error(`a ${replica.role} replica exited ${code} on SIGTERM:\n${replica.output()}`)
}

/** The checkout, from here or from the benchmarks' compiled copy of this file. */
function repositoryRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
  return dir
}

function ms(value: number): string {
  return `${(value / 1000).toFixed(1)} s`
}
