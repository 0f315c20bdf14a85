import t from 'tap'
import { withRepositoryLock } from '../../src/deletions/repository-lock.js'
import { authHeaders, build, createTestDatabase, testPool } from '../helper.js'
import { deferred, waitFor } from '../helpers/wait.js'

const viewer = authHeaders({ sub: 'ada', groups: ['team'], roles: ['viewer'] })

t.test(
  'with every connection of the pool taken, REST and GraphQL answer 503 REGENT_DATABASE_UNAVAILABLE, then recover',
  async (t) => {
    const app = await build(t, { config: { database: { poolMax: 2, connectionTimeoutMs: 300 } } })
    const held = [await app.db.connect(), await app.db.connect()]
    const rest = await app.inject({ url: '/v1/deletions', headers: viewer })
    t.equal(rest.statusCode, 503, rest.body)
    t.equal(rest.json().error.code, 'REGENT_DATABASE_UNAVAILABLE')
    t.match(rest.json().error.message, /The database is busy; try again shortly/)
    t.equal(rest.headers['retry-after'], '2', 'says when to try again')

    const graphql = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: viewer,
      payload: { query: '{ deletions(first: 5) { nodes { id } } }' },
    })
    const errors = graphql.json().errors as { extensions: { code: string }; message: string }[]
    t.equal(errors[0]?.extensions.code, 'REGENT_DATABASE_UNAVAILABLE', graphql.body)
    t.notMatch(errors[0]?.message ?? '', /timeout exceeded/, 'the driver’s wording stays in the log')

    for (const client of held) client.release()
    const after = await app.inject({ url: '/v1/deletions', headers: viewer })
    t.equal(after.statusCode, 200, 'answers again once a connection is free')
  },
)

t.test(
  'repository write sessions leave a quarter of the pool (at least two connections) to other work',
  async (t) => {
    const url = await createTestDatabase(t)
    const pool = testPool(t, url, { max: 4, connectionTimeoutMillis: 2000 })
    const gate = deferred<void>()
    let inside = 0
    let mostInside = 0
    const sessions = Array.from({ length: 6 }, (_, i) =>
      withRepositoryLock(pool, 'reg', `team/repo-${i}`, undefined, async (session) => {
        inside++
        mostInside = Math.max(mostInside, inside)
        await session.transaction((db) => db.query('SELECT 1'))
        await gate.promise
        inside--
      }),
    )
    // Until the first writers are in, however slow the machine; with the bound broken more get in.
    await waitFor(() => inside >= 2, 10_000, 'the first sessions to start')
    t.equal(inside, 2, 'two sessions run (four connections, two kept free); the other four wait their turn')
    const others = await Promise.all([pool.query('SELECT 1 AS one'), pool.query('SELECT 1 AS one')])
    t.same(
      others.map((r) => r.rows[0].one),
      [1, 1],
      'queries outside the sessions find connections meanwhile',
    )

    const abandoned = new AbortController()
    const late = withRepositoryLock(pool, 'reg', 'team/late', abandoned.signal, async () => 'ran')
    abandoned.abort(new Error('job cancelled'))
    await t.rejects(late, /job cancelled/, 'a waiting writer can be called off')

    gate.resolve()
    await Promise.all(sessions)
    t.equal(mostInside, 2, 'never more than two at once')
    t.equal(inside, 0, 'every session ran to its end')
  },
)
