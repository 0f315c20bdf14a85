import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import WebSocket from 'ws'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build, createTestDatabase } from '../helper.js'
import { pushImage } from '../helpers/fixtures.js'
import { subscribeGraphql } from '../helpers/graphql-ws.js'
import { registryConfig, withRegistry } from '../helpers/registry.js'
import { fastJobs, governance, paula, requestDeletion } from './support.js'

interface Update {
  state: string
  progress: { total: number; deleted: number; pending: number }
}

t.test('deletionUpdated streams a request from queued to succeeded, progress included', async (t) => {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  for (const tag of ['s1', 's2', 's3']) await pushImage(client, 'payments/api', { tags: [tag], layers: 1 })
  const databaseUrl = await createTestDatabase(t)
  const config = { registries: [registryConfig(registry, { name: 'local' })], governance, jobs: fastJobs }
  // The API replica serves the subscription; a second replica runs the job: the update crosses
  // processes through Postgres.
  const api = await build(t, { databaseUrl, config: { ...config, worker: false } })
  await api.listen({ port: 0, host: '127.0.0.1' })
  const port = (api.server.address() as { port: number }).port

  const request = await requestDeletion(api, {
    verb: 'delete-manifest',
    targets: ['s1', 's2', 's3'].map((tag) => ({ repository: 'payments/api', tag })),
  })
  let worker: Promise<unknown> = Promise.resolve()
  const result = await subscribeGraphql({
    port,
    authorization: paula.authorization!,
    query:
      'subscription ($id: ID!) { deletionUpdated(id: $id) { state progress { total deleted pending } } }',
    variables: { id: request.id },
    // The worker starts only once the subscription is in place.
    onSubscribed: () => {
      worker = sleep(300).then(() => build(t, { databaseUrl, config: { ...config, worker: true } }))
    },
    until: (data) => (data.deletionUpdated as Update).state === 'succeeded',
  })
  await worker
  const updates = result.updates.map((data) => data.deletionUpdated as Update)
  const deletedCounts = updates.map((u) => u.progress.deleted)
  t.ok(updates.length >= 2, `several updates arrived (${updates.length})`)
  t.same([...deletedCounts].sort(), deletedCounts, 'progress only grows')
  t.same(updates.at(-1), { state: 'succeeded', progress: { total: 3, deleted: 3, pending: 0 } })
})

t.test('a subscription needs a token, and a request the caller may not see is refused', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const app = await build(t, { databaseUrl, config: { governance } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const noToken = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws')
  const refused = await new Promise<number | string>((resolve) => {
    noToken.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0)
      req.destroy()
    })
    noToken.on('open', () => resolve('opened'))
    noToken.on('error', (err) => resolve(`error ${err.message}`))
    noToken.on('close', (code) => resolve(`closed ${code}`))
  })
  noToken.terminate()
  t.equal(refused, 401, 'the upgrade is refused without a token')

  const stranger = authHeaders({ sub: 'x', groups: ['other'], roles: ['viewer'] })
  const answer = await subscribeGraphql({
    port,
    authorization: stranger.authorization!,
    query: 'subscription { deletionUpdated(id: "00000000-0000-0000-0000-000000000000") { state } }',
  })
  t.match(JSON.stringify(answer.error), /REGENT_DELETION_NOT_FOUND|not found/)
})
