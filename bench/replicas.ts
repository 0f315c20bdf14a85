import { runReplicaScenario } from '../test/helpers/replica-scenario.js'
import { log } from './support.js'

/**
 * 3 API replicas and 2 workers of the compiled server on Debian's PostgreSQL 15, 2,000 tag
 * deletions in 20 requests filed round-robin, one worker SIGKILLed a third of the way through.
 * Prints the throughput, the crash's cost in re-sent DELETEs, and the exactly-once and GC counts
 * (test/deploy/replicas.test.ts asserts them). Sizes: BENCH_REPOSITORIES, BENCH_TAGS.
 */
const repositories = Number(process.env.BENCH_REPOSITORIES ?? 20)
const tagsPerRepository = Number(process.env.BENCH_TAGS ?? 100)

runReplicaScenario({ repositories, tagsPerRepository, apiReplicas: 3, workers: 2, killAtShare: 0.33, log })
  .then((result) => {
    const statuses = [...result.deletes.values()]
    const once = statuses.filter((s) => s.filter((x) => x === 202).length === 1).length
    const resent = statuses.reduce((n, s) => n + s.length - 1, 0)
    log('')
    log(`items: ${result.items}; states: ${JSON.stringify(result.itemStates)}`)
    log(
      `registry: ${once}/${result.items} digests deleted exactly once (202); ${resent} DELETE(s) re-sent after the crash`,
    )
    log(
      `audit: ${result.auditItemEvents.length} manifest.deleted events; chain ${result.auditChainOk ? 'intact' : 'BROKEN'}`,
    )
    log(
      `GC runs: ${result.gcRuns.map((r) => `${r.trigger} ${r.state}, ${r.bytesFreed} bytes freed`).join('; ')}`,
    )
    log(
      `subscriptions: ${result.requests.filter((r) => r.finalState === 'succeeded').length}/${result.requests.length} streams reached succeeded on another replica than the filing one; GC stream: ${result.gcWatched.finalState}`,
    )
    if (result.kill)
      log(
        `crash: ${result.kill.heldJobs} job(s) held by the killed worker, ${result.kill.jobsTakenOver} finished by the other`,
      )
    const t = result.timings
    log(
      `timings: push ${(t.pushMs / 1000).toFixed(1)} s, file ${(t.fileMs / 1000).toFixed(1)} s, execute ${(t.executeMs / 1000).toFixed(1)} s (${Math.round(result.items / (t.executeMs / 1000))} items/s), GC ${(t.gcMs / 1000).toFixed(1)} s`,
    )
  })
  .catch((err: Error) => {
    process.stderr.write(`${err.stack}\n`)
    process.exitCode = 1
  })
