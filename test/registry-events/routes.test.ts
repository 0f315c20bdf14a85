import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import t from 'tap'
import { USER_AGENT } from '../../src/oci/index.js'
import { type Queryable, recordSightings, repositoryActivity } from '../../src/registry-events/index.js'
import type { RegistryEvent } from '../../src/registry-events/schemas.js'
import { resolveEventSecrets } from '../../src/registry-events/secrets.js'
import { RegistryEventsService } from '../../src/registry-events/service.js'
import { build } from '../helper.js'
import {
  blobEvent,
  eventRegistries,
  manifestEvent,
  postEvents,
  randomDigest,
  SECRET,
  SECRET_ENV,
  storedRows,
} from './support.js'

function buildEventsApp(t: Parameters<typeof build>[0], extra: Parameters<typeof build>[1] = {}) {
  return build(t, { config: { registries: eventRegistries() }, env: { [SECRET_ENV]: SECRET }, ...extra })
}

const at = (iso: string) => new Date(iso)

t.test('a push and then a pull are recorded per digest and per tag', async (t) => {
  const app = await buildEventsApp(t)
  const digest = randomDigest()
  const push = await postEvents(app, [
    blobEvent('2026-03-01T10:00:00Z'),
    manifestEvent({ digest, tag: 'v1', timestamp: '2026-03-01T10:00:01.5Z' }),
  ])
  t.equal(push.statusCode, 200, push.body)
  t.same(
    push.json(),
    { accepted: 1, duplicates: 0, ignored: 1 },
    'the blob event is acknowledged, not counted',
  )

  let activity = await repositoryActivity(app.db, 'hub', 'team/app')
  t.same(activity.digests.get(digest), {
    firstPushAt: at('2026-03-01T10:00:01.5Z'),
    lastPushAt: at('2026-03-01T10:00:01.5Z'),
    lastPullAt: null,
  })
  t.same(activity.tags.get('v1'), {
    digest,
    firstPushAt: at('2026-03-01T10:00:01.5Z'),
    lastPushAt: at('2026-03-01T10:00:01.5Z'),
    lastPullAt: null,
  })

  const pullByTag = await postEvents(app, [
    manifestEvent({ action: 'pull', digest, tag: 'v1', timestamp: '2026-03-02T08:00:00Z' }),
  ])
  t.same(pullByTag.json(), { accepted: 1, duplicates: 0, ignored: 0 })
  const pullByDigest = await postEvents(app, [
    manifestEvent({ action: 'pull', digest, timestamp: '2026-03-03T08:00:00Z' }),
  ])
  t.same(pullByDigest.json(), { accepted: 1, duplicates: 0, ignored: 0 })

  activity = await repositoryActivity(app.db, 'hub', 'team/app')
  t.same(
    activity.digests.get(digest)?.lastPullAt,
    at('2026-03-03T08:00:00Z'),
    'both pulls count for the digest',
  )
  t.same(
    activity.tags.get('v1')?.lastPullAt,
    at('2026-03-02T08:00:00Z'),
    'only the pull by tag counts for the tag',
  )
  t.same(activity.tags.get('v1')?.lastPushAt, at('2026-03-01T10:00:01.5Z'), 'a pull leaves the push times')
  t.equal(activity.digests.size, 1)
  t.equal(activity.tags.size, 1)
  t.same((await repositoryActivity(app.db, 'hub', 'team/other')).digests.size, 0, 'per repository')
})

t.test('the same envelope delivered twice is counted as duplicates and changes nothing', async (t) => {
  const app = await buildEventsApp(t)
  const digest = randomDigest()
  const envelope = [
    manifestEvent({ digest, tag: 'v1', timestamp: '2026-03-01T10:00:00Z' }),
    manifestEvent({ action: 'pull', digest, tag: 'v1', timestamp: '2026-03-01T11:00:00Z' }),
  ]
  t.same((await postEvents(app, envelope)).json(), { accepted: 2, duplicates: 0, ignored: 0 })
  const before = await repositoryActivity(app.db, 'hub', 'team/app')
  const rows = await storedRows(app)

  t.same((await postEvents(app, envelope)).json(), { accepted: 0, duplicates: 2, ignored: 0 })
  t.same(await repositoryActivity(app.db, 'hub', 'team/app'), before, 'times unchanged')
  t.same(await storedRows(app), rows, 'no rows added')

  // One new event beside a redelivered one, and an id repeated inside one envelope.
  const later = manifestEvent({ action: 'pull', digest, tag: 'v1', timestamp: '2026-03-05T00:00:00Z' })
  const mixed = await postEvents(app, [envelope[0], later, later])
  t.same(mixed.json(), { accepted: 1, duplicates: 2, ignored: 0 })
  t.same(
    (await repositoryActivity(app.db, 'hub', 'team/app')).tags.get('v1')?.lastPullAt,
    at('2026-03-05T00:00:00Z'),
  )

  // Three distinct ids remembered: the repeated ones added no rows.
  t.equal((await app.db.query('SELECT 1 FROM registry_event_ids WHERE registry = $1', ['hub'])).rowCount, 3)

  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /regent_registry_events_total\{registry="hub",outcome="accepted"\} 3\n/)
  t.match(metrics, /regent_registry_events_total\{registry="hub",outcome="duplicate"\} 4\n/)
})

t.test(
  'events delivered out of order still give the first and last times and the latest digest',
  async (t) => {
    const app = await buildEventsApp(t)
    const older = randomDigest()
    const newer = randomDigest()
    // The newer push of the tag arrives first, then the older one; pulls likewise.
    await postEvents(app, [
      manifestEvent({ digest: newer, tag: 'latest', timestamp: '2026-04-02T00:00:00Z' }),
      manifestEvent({ action: 'pull', digest: newer, tag: 'latest', timestamp: '2026-04-03T00:00:00Z' }),
    ])
    await postEvents(app, [
      manifestEvent({ digest: older, tag: 'latest', timestamp: '2026-04-01T00:00:00Z' }),
      manifestEvent({ action: 'pull', digest: older, tag: 'latest', timestamp: '2026-04-01T12:00:00Z' }),
      // Within one envelope too: two pushes of one digest, the later first.
      manifestEvent({ digest: newer, timestamp: '2026-04-02T06:00:00Z' }),
      manifestEvent({ digest: newer, timestamp: '2026-03-30T00:00:00Z' }),
    ])
    const activity = await repositoryActivity(app.db, 'hub', 'team/app')
    t.same(activity.tags.get('latest'), {
      digest: newer,
      firstPushAt: at('2026-04-01T00:00:00Z'),
      lastPushAt: at('2026-04-02T00:00:00Z'),
      lastPullAt: at('2026-04-03T00:00:00Z'),
    })
    t.same(activity.digests.get(newer), {
      firstPushAt: at('2026-03-30T00:00:00Z'),
      lastPushAt: at('2026-04-02T06:00:00Z'),
      lastPullAt: at('2026-04-03T00:00:00Z'),
    })
    t.same(activity.digests.get(older), {
      firstPushAt: at('2026-04-01T00:00:00Z'),
      lastPushAt: at('2026-04-01T00:00:00Z'),
      lastPullAt: at('2026-04-01T12:00:00Z'),
    })
  },
)

t.test(
  "registry timestamps with nanoseconds and offsets are read exactly; Regent's own reads are not pulls",
  async (t) => {
    const app = await buildEventsApp(t)
    const digest = randomDigest()
    const res = await postEvents(
      app,
      [
        manifestEvent({ digest, tag: 'v2', timestamp: '2026-11-28T03:34:43.822091475Z' }),
        manifestEvent({ action: 'pull', digest, tag: 'v2', timestamp: '2026-11-28T05:00:00.25+02:00' }),
        manifestEvent({
          action: 'pull',
          digest,
          tag: 'v2',
          method: 'HEAD',
          userAgent: USER_AGENT,
          timestamp: '2026-12-01T00:00:00Z',
        }),
        { ...manifestEvent({ digest, timestamp: '2026-12-01T00:00:00Z' }), action: 'delete' },
        { ...manifestEvent({ digest, timestamp: '2026-12-01T00:00:00Z' }), action: 'mount' },
      ],
      { contentType: 'application/json' },
    )
    t.same(res.json(), { accepted: 2, duplicates: 0, ignored: 3 })
    const { rows } = await app.db.query<{ pushed: string }>(
      "SELECT to_char(first_push_at AT TIME ZONE 'UTC', 'HH24:MI:SS.US') AS pushed FROM registry_digest_activity",
    )
    t.equal(rows[0]?.pushed, '03:34:43.822091', 'microseconds kept (Postgres precision)')
    const activity = await repositoryActivity(app.db, 'hub', 'team/app')
    t.same(
      activity.tags.get('v2')?.lastPullAt,
      at('2026-11-28T03:00:00.250Z'),
      'offset applied; own HEAD ignored',
    )
  },
)

t.test(
  'a wrong or missing secret is 401, stores nothing, and is logged and audited once per source without the secret',
  async (t) => {
    const lines: string[] = []
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString())
        done()
      },
    })
    const app = await buildEventsApp(t, { loggerInstance: pino({ level: 'info' }, stream) })
    const events = [manifestEvent({ tag: 'v1', timestamp: '2026-03-01T10:00:00Z' })]
    const wrong = await postEvents(app, events, { secret: 'not-the-secret' })
    t.equal(wrong.statusCode, 401)
    t.equal(wrong.json().error.code, 'REGENT_EVENTS_UNAUTHENTICATED')
    const missing = await postEvents(app, events, { secret: null })
    t.equal(missing.statusCode, 401)
    t.equal(missing.json().error.code, 'REGENT_EVENTS_UNAUTHENTICATED')
    const prefix = await postEvents(app, events, { secret: SECRET.slice(0, -1) })
    t.equal(prefix.statusCode, 401, 'a prefix of the secret is not the secret')
    // Refused before the body is read: even a malformed body gets the 401, not a 400.
    const malformed = await postEvents(app, [], { secret: 'nope', raw: '{not json' })
    t.equal(malformed.statusCode, 401)
    t.same(await storedRows(app), { ids: 0, digests: 0, tags: 0 })

    const warnings = () => lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40)
    t.equal(warnings().length, 1, "the source's first refusal is a warning, the others are counted")
    t.match(warnings()[0], { endpoint: 'registry-events', reason: 'hub: secret wrong', msg: /refused/ })
    await app.refusals.flush()
    t.match(warnings()[1], { count: 4, reasons: { 'hub: secret wrong': 3, 'hub: secret missing': 1 } })
    const { rows } = await app.db.query<{ details: Record<string, unknown> }>(
      "SELECT details FROM audit_events WHERE action = 'registry_events.refused'",
    )
    t.equal(rows.length, 1, 'one audit event summarises the four refusals')
    t.match(rows[0]?.details, { count: 4, summary: /4 refused registry event envelopes from / })
    const all = lines.join('\n')
    t.notOk(all.includes('not-the-secret'), 'the given secret is not logged')
    t.notOk(all.includes(SECRET.slice(0, -1)), 'nor the real one')
  },
)

t.test('malformed envelopes are 400 with a stable code and store nothing', async (t) => {
  const app = await buildEventsApp(t)
  const good = manifestEvent({ tag: 'v1', timestamp: '2026-03-01T10:00:00Z' })
  const cases: [string, { events?: unknown; raw?: string }, string][] = [
    ['not JSON', { raw: '{"events": [' }, 'REGENT_BAD_JSON'],
    ['no events array', { events: { events: 'nope' } }, 'REGENT_VALIDATION'],
    ['an event without id', { events: [{ ...good, id: undefined }] }, 'REGENT_VALIDATION'],
    [
      'a date that does not exist',
      { events: [{ ...good, timestamp: '2026-02-30T10:00:00Z' }] },
      'REGENT_VALIDATION',
    ],
    [
      'a timestamp without zone',
      { events: [{ ...good, timestamp: '2026-03-01T10:00:00' }] },
      'REGENT_VALIDATION',
    ],
    [
      'a manifest push without digest',
      { events: [manifestEvent({ digest: '', timestamp: '2026-03-01T10:00:00Z' })] },
      'REGENT_VALIDATION',
    ],
    [
      'a bad repository',
      { events: [manifestEvent({ repository: 'Team/App', timestamp: '2026-03-01T10:00:00Z' })] },
      'REGENT_VALIDATION',
    ],
    [
      'a bad tag',
      { events: [manifestEvent({ tag: '-x', timestamp: '2026-03-01T10:00:00Z' })] },
      'REGENT_VALIDATION',
    ],
  ]
  for (const [name, { events, raw }, code] of cases) {
    // A good event first: it must not be stored either.
    const body = events === undefined ? undefined : Array.isArray(events) ? [good, ...events] : events
    const res = await postEvents(app, body, raw === undefined ? {} : { raw })
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().error.code, code, name)
  }
  const wrongType = await postEvents(app, [good], { contentType: 'application/xml' })
  t.equal(wrongType.statusCode, 415)
  t.same(await storedRows(app), { ids: 0, digests: 0, tags: 0 })
  t.same(
    (await postEvents(app, [good])).json(),
    { accepted: 1, duplicates: 0, ignored: 0 },
    'the good event alone is taken',
  )
})

t.test('a registry without events is 404 not enabled; an unknown registry is 404 unknown', async (t) => {
  const app = await buildEventsApp(t)
  const events = [manifestEvent({ tag: 'v1', timestamp: '2026-03-01T10:00:00Z' })]
  const quiet = await postEvents(app, events, { registry: 'quiet' })
  t.equal(quiet.statusCode, 404)
  t.equal(quiet.json().error.code, 'REGENT_EVENTS_NOT_ENABLED')
  const unknown = await postEvents(app, events, { registry: 'nowhere' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().error.code, 'REGENT_REGISTRY_UNKNOWN')
  t.same(await storedRows(app), { ids: 0, digests: 0, tags: 0 })
})

t.test('the service does not start when an events secret variable is not set', async (t) => {
  await t.rejects(
    build(t, { config: { registries: eventRegistries() }, env: {} }),
    /registry hub: environment variable REGENT_TEST_EVENTS_SECRET \(events\.secretEnv\) is not set/,
  )
})

t.test(
  'recordSightings keeps the first time of each (tag, digest), and answers every tag given',
  async (t) => {
    const app = await buildEventsApp(t)
    const first = await recordSightings(app.db, 'hub', 'team/app', [
      { tag: 'a', digest: 'sha256:1' },
      { tag: 'b', digest: 'sha256:2' },
      { tag: 'a', digest: 'sha256:9' },
    ])
    t.same([...first.keys()].sort(), ['a', 'b'])
    await app.db.query(
      "UPDATE registry_tag_sightings SET first_seen_at = '2026-01-01T00:00:00Z' WHERE tag = 'a'",
    )

    const again = await recordSightings(app.db, 'hub', 'team/app', [{ tag: 'a', digest: 'sha256:1' }])
    t.same(
      again.get('a'),
      at('2026-01-01T00:00:00Z'),
      'a later sighting of the same pair does not move the first',
    )
    const second = await recordSightings(app.db, 'hub', 'team/app', [
      { tag: 'a', digest: 'sha256:3' },
      { tag: 'c', digest: 'sha256:4' },
    ])
    t.ok(
      (second.get('a') as Date).getTime() > Date.parse('2026-01-01T00:00:00Z'),
      'a tag moved onto another digest is seen anew: its time is the new image’s',
    )
    t.ok(second.get('c') instanceof Date, 'a new tag gets its first time')
    t.ok((second.get('c') as Date).getTime() > Date.parse('2026-01-01T00:00:00Z'))
    const { rows } = await app.db.query<{ tag: string; digest: string }>(
      'SELECT tag, digest FROM registry_tag_sightings ORDER BY tag, digest',
    )
    t.same(rows, [
      { tag: 'a', digest: 'sha256:1' },
      { tag: 'a', digest: 'sha256:3' },
      { tag: 'b', digest: 'sha256:2' },
      { tag: 'c', digest: 'sha256:4' },
    ])
    t.same((await recordSightings(app.db, 'hub', 'team/app', [])).size, 0)
    t.same(
      (await recordSightings(app.db, 'hub', 'team/other', [{ tag: 'a', digest: 'sha256:1' }])).get('a') ===
        again.get('a'),
      false,
      'per repository',
    )
  },
)

t.test('200 tags: one query each for sightings and activity', async (t) => {
  const app: FastifyInstance = await buildEventsApp(t)
  let queries = 0
  const counting: Queryable = {
    query: ((...args: Parameters<typeof app.db.query>) => {
      queries++
      return (app.db.query as (...a: unknown[]) => unknown)(...args)
    }) as typeof app.db.query,
  }
  const tags = Array.from({ length: 200 }, (_, i) => ({ tag: `t${i}`, digest: randomDigest() }))
  const events = tags.flatMap(({ tag, digest }, i) => [
    manifestEvent({ digest, tag, timestamp: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }),
    manifestEvent({
      action: 'pull',
      digest,
      tag,
      timestamp: new Date(Date.UTC(2026, 1, 1, 0, i)).toISOString(),
    }),
  ])
  t.same((await postEvents(app, events)).json(), { accepted: 400, duplicates: 0, ignored: 0 })

  const seen = await recordSightings(counting, 'hub', 'team/app', tags)
  t.equal(queries, 1)
  t.equal(seen.size, 200)
  const again = await recordSightings(counting, 'hub', 'team/app', tags)
  t.equal(queries, 2)
  t.same([...again.entries()].sort(), [...seen.entries()].sort())

  const activity = await repositoryActivity(counting, 'hub', 'team/app')
  t.equal(queries, 3)
  t.equal(activity.tags.size, 200)
  t.equal(activity.digests.size, 200)
  t.same(activity.tags.get('t199')?.lastPullAt, new Date(Date.UTC(2026, 1, 1, 0, 199)))
})

t.test('recordSightings answers a tag another transaction sighted first while it waited', async (t) => {
  const app = await buildEventsApp(t)
  const other = await app.db.connect()
  t.teardown(() => other.release())
  await other.query('BEGIN')
  await recordSightings(other, 'hub', 'team/app', [{ tag: 'x', digest: 'sha256:first' }])
  // This call's insert waits for the open transaction's row; its snapshot predates that row.
  const waiting = recordSightings(app.db, 'hub', 'team/app', [
    { tag: 'x', digest: 'sha256:first' },
    { tag: 'y', digest: 'sha256:y' },
  ])
  await new Promise((resolve) => setTimeout(resolve, 200))
  await other.query(
    "UPDATE registry_tag_sightings SET first_seen_at = '2026-01-01T00:00:00Z' WHERE tag = 'x'",
  )
  await other.query('COMMIT')
  const seen = await waiting
  t.same(seen.get('x'), at('2026-01-01T00:00:00Z'), "the other transaction's first sighting")
  t.ok(seen.get('y'), 'and its own new tag')
  const { rows } = await app.db.query("SELECT digest FROM registry_tag_sightings WHERE tag = 'x'")
  t.same(rows, [{ digest: 'sha256:first' }])
})

t.test('event ids older than the retention are pruned; a late redelivery still moves no time', async (t) => {
  const app = await buildEventsApp(t)
  const [older, newer] = [randomDigest(), randomDigest()]
  const first = manifestEvent({ digest: older, tag: 'v1', timestamp: '2026-03-01T10:00:00Z' })
  await postEvents(app, [first])
  await postEvents(app, [manifestEvent({ digest: newer, tag: 'v1', timestamp: '2026-03-02T10:00:00Z' })])
  const before = await repositoryActivity(app.db, 'hub', 'team/app')
  await app.db.query(
    `UPDATE registry_event_ids SET received_at = now() - interval '8 days' WHERE event_id = $1`,
    [first.id],
  )
  await app.db.query(
    `INSERT INTO registry_event_ids (registry, event_id, received_at)
     VALUES ('hub', 'recent', now() - interval '6 days'), ('quiet', 'stale', now() - interval '8 days')`,
  )
  const ids = async () =>
    (
      await app.db.query<{ id: string }>("SELECT registry || '/' || event_id AS id FROM registry_event_ids")
    ).rows
      .map((r) => r.id)
      .sort()

  // A new service prunes after its first envelope (then at most hourly).
  const service = new RegistryEventsService({
    pool: app.db,
    secrets: resolveEventSecrets(eventRegistries(), { [SECRET_ENV]: SECRET }),
    log: app.log,
    refusals: app.refusals,
  })
  t.same(await service.ingest('hub', [first as RegistryEvent]), { accepted: 0, duplicates: 1, ignored: 0 })
  t.notOk((await ids()).includes(`hub/${first.id}`), 'the 8-day-old id is pruned')
  t.ok((await ids()).includes('hub/recent'), 'a 6-day-old one is kept')
  t.ok((await ids()).includes('quiet/stale'), "another registry's ids are its own")

  t.same(await service.ingest('hub', [first as RegistryEvent]), { accepted: 1, duplicates: 0, ignored: 0 })
  t.same(await repositoryActivity(app.db, 'hub', 'team/app'), before, 'redelivered long after: nothing moved')
})
