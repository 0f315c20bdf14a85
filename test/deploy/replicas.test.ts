import t from 'tap'
import { debianPostgresInstalled } from '../helpers/debian-postgres.js'
import { runReplicaScenario } from '../helpers/replica-scenario.js'

/**
 * 3 API replicas and 2 workers of the compiled server on Debian's PostgreSQL 15, one worker
 * SIGKILLed while it holds running jobs. 10 requests of 30 tags keep this within a CI budget;
 * `npm run bench:replicas` runs the same scenario at 20 × 100 and prints its numbers.
 */
const repositories = 10
const tagsPerRepository = 30

t.test(
  '3 API and 2 worker replicas, one killed mid-run: every item deleted exactly once, one coalesced GC, subscriptions through any API replica',
  { skip: debianPostgresInstalled() ? false : 'needs Debian postgresql-15 (apt-get install postgresql-15)' },
  async (t) => {
    const result = await runReplicaScenario({
      repositories,
      tagsPerRepository,
      apiReplicas: 3,
      workers: 2,
      killAtShare: 0.3,
      log: (line) => t.comment(line),
    })
    const items = repositories * tagsPerRepository
    t.equal(result.items, items)
    t.same(result.itemStates, { deleted: items }, 'every item deleted, none skipped or failed')

    t.ok(result.kill && result.kill.heldJobs > 0, 'a worker was killed while it held running jobs')
    t.ok(result.kill!.atDeleted < items, `mid-run (${result.kill!.atDeleted}/${items} deleted)`)
    t.equal(
      result.kill!.jobsTakenOver,
      result.kill!.heldJobs,
      "the other worker finished the dead one's jobs",
    )

    // What the registry saw: each pinned digest deleted by exactly one accepted DELETE; a DELETE
    // re-sent by the worker that took over finds it gone (404) and changes nothing.
    const planned = new Set(result.plannedDigests)
    t.equal(planned.size, items, 'one digest per item')
    const problems: string[] = []
    let resent = 0
    for (const digest of planned) {
      const statuses = result.deletes.get(digest) ?? []
      if (statuses[0] !== 202) problems.push(`${digest}: ${statuses.join(',') || 'never deleted'}`)
      else if (statuses.slice(1).some((s) => s !== 404)) problems.push(`${digest}: ${statuses.join(',')}`)
      resent += statuses.length - 1
    }
    t.same(problems, [], 'each digest: one 202, anything after it 404')
    // Only an item whose marker the dead worker committed, and whose outcome it did not, is sent
    // again: the taker-over cannot know whether that DELETE left.
    t.ok(
      resent <= result.kill!.sentUnfinished,
      `${resent} DELETE(s) re-sent, at most the ${result.kill!.sentUnfinished} the dead worker had marked sent and not finished`,
    )
    // Each replica's capability probe DELETEs a random digest to learn whether deletes are enabled
    // (404 yes, 405 no); apart from those, nothing outside the plans was even asked for.
    t.same(
      [...result.deletes].filter(
        ([digest, statuses]) => !planned.has(digest) && statuses.some((s) => s !== 404),
      ),
      [],
      'nothing outside the plans was deleted',
    )

    // What the audit log holds: one manifest.deleted per item, and an intact chain.
    const events = result.auditItemEvents
    t.equal(events.length, items, 'one audit event per item')
    t.equal(new Set(events.map((e) => `${e.deletionId}/${e.position}`)).size, items, 'no item audited twice')
    t.same(new Set(events.map((e) => e.digest)), planned)
    t.ok(result.auditChainOk, 'the hash chain verifies')

    // One GC after the burst, crash included.
    t.equal(result.gcRuns.length, 1, JSON.stringify(result.gcRuns))
    t.match(result.gcRuns[0], { trigger: 'coalesced', state: 'succeeded' })
    t.ok((result.gcRuns[0]?.bytesFreed ?? 0) > 0, 'and it freed space')
    t.equal(result.gcWatched.finalState, 'succeeded', 'its subscription streamed to the end')
    t.ok(result.gcWatched.steps.includes('gc:true'))

    // Every request's subscription, on an API replica that did not file it, saw it finish.
    for (const request of result.requests) {
      t.not(request.watchedOn, request.filedOn)
      t.equal(request.finalState, 'succeeded', `request ${request.id} streamed to the end`)
      t.equal(request.deletedSeen, tagsPerRepository)
    }
    t.same([...new Set(result.requests.map((r) => r.watchedOn))].sort(), [0, 1, 2], 'on every API replica')
  },
)
