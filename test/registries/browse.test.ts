import t, { type Test } from 'tap'
import { RegistryClient } from '../../src/oci/index.js'
import { authHeaders, build } from '../helper.js'
import { type PushedImage, pushImage, pushIndex, pushManyTags } from '../helpers/fixtures.js'
import { registryConfig, registryEnv, withRegistry } from '../helpers/registry.js'

const viewer = authHeaders({ sub: 'vera', roles: ['viewer'] })
const sizeOf = (image: PushedImage) => image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0)

async function fixtureRegistry(t: Test) {
  const registry = await withRegistry(t)
  const client = new RegistryClient(registryConfig(registry))
  t.teardown(() => client.close())
  const shared = await pushImage(client, 'team/app', { tags: ['v1', 'latest'], format: 'oci' })
  const docker = await pushImage(client, 'team/app', { tags: ['v2'], format: 'docker', layers: 3 })
  const index = await pushIndex(client, 'team/multi', { tags: ['1.0'] })
  const many = await pushManyTags(client, 'team/many', 25)
  for (const name of ['alpha/one', 'alpha/two', 'beta/one'])
    await pushImage(client, name, { tags: ['x'], layers: 1 })
  return { registry, client, shared, docker, index, many }
}

type Fixture = Awaited<ReturnType<typeof fixtureRegistry>>

async function collectPages<T>(
  fetchPage: (cursor?: string) => Promise<{ items: T[]; nextCursor: string | null }>,
) {
  const all: T[] = []
  const cursors = new Set<string>()
  let cursor: string | undefined
  for (let i = 0; i < 100; i++) {
    const page = await fetchPage(cursor)
    all.push(...page.items)
    if (!page.nextCursor) return all
    if (cursors.has(page.nextCursor)) throw new Error('a cursor repeated')
    cursors.add(page.nextCursor)
    cursor = page.nextCursor
  }
  throw new Error('pagination did not end')
}

t.test('browse over REST matches the pushed fixtures', async (t) => {
  const fx: Fixture = await fixtureRegistry(t)
  const app = await build(t, { config: { registries: [registryConfig(fx.registry, { name: 'local' })] } })

  t.test('registries are listed with their probed capabilities', async (t) => {
    const res = await app.inject({ url: '/v1/registries', headers: viewer })
    t.equal(res.statusCode, 200)
    const [local] = res.json().items
    t.equal(local.name, 'local')
    t.equal(local.health, 'ok')
    t.equal(local.capabilities.deleteEnabled, true)
    t.equal(local.capabilities.tagDelete, false, 'distribution 2.8 cannot delete by tag')
  })

  t.test('repositories page by prefix without gaps or repeats', async (t) => {
    const names = await collectPages<{ name: string }>(async (cursor) => {
      const q = new URLSearchParams({ limit: '2', ...(cursor ? { cursor } : {}) })
      return (await app.inject({ url: `/v1/registries/local/repositories?${q}`, headers: viewer })).json()
    })
    t.same(
      names.map((r: { name: string }) => r.name),
      ['alpha/one', 'alpha/two', 'beta/one', 'team/app', 'team/many', 'team/multi'],
    )
    const alpha = await app.inject({
      url: '/v1/registries/local/repositories?prefix=alpha/',
      headers: viewer,
    })
    t.same(
      alpha.json().items.map((r: { name: string }) => r.name),
      ['alpha/one', 'alpha/two'],
    )
  })

  t.test('tags carry digest, media type, size, created and the tags sharing their digest', async (t) => {
    const res = await app.inject({
      url: '/v1/registries/local/repositories/team%2Fapp/tags',
      headers: viewer,
    })
    t.equal(res.statusCode, 200)
    const byName = Object.fromEntries(res.json().items.map((tag: { name: string }) => [tag.name, tag]))
    t.same(Object.keys(byName).sort(), ['latest', 'v1', 'v2'])
    for (const [name, image, siblings] of [
      ['v1', fx.shared, ['latest']],
      ['latest', fx.shared, ['v1']],
      ['v2', fx.docker, []],
    ] as const) {
      const tag = byName[name]
      t.equal(tag.digest, image.digest, `${name}: digest`)
      t.equal(tag.mediaType, image.mediaType, `${name}: media type`)
      t.equal(tag.kind, 'image')
      t.equal(tag.size, sizeOf(image), `${name}: size is config + layers`)
      t.equal(tag.created, image.config.created, `${name}: created from the config`)
      t.same(tag.sharedWith, siblings, `${name}: siblings`)
    }
    t.equal(res.json().sharedWithComplete, true)
  })

  t.test('a multi-platform index shows both platforms with their sizes', async (t) => {
    const res = await app.inject({
      url: '/v1/registries/local/repositories/team%2Fmulti/tags',
      headers: viewer,
    })
    const [tag] = res.json().items
    t.equal(tag.kind, 'index')
    t.equal(tag.digest, fx.index.digest)
    t.same(
      tag.platforms.map((p: { architecture: string; size: number; digest: string }) => [
        p.architecture,
        p.size,
        p.digest,
      ]),
      fx.index.children.map((c) => [c.platform.architecture, sizeOf(c), c.digest]),
    )
    t.equal(
      tag.size,
      fx.index.children.reduce((sum, c) => sum + sizeOf(c), 0),
      'distinct blobs of all platforms',
    )
  })

  t.test('tag pagination has no gaps or repeats', async (t) => {
    const tags = await collectPages<{ name: string; sharedWith: string[] }>(async (cursor) => {
      const q = new URLSearchParams({ limit: '7', ...(cursor ? { cursor } : {}) })
      return (
        await app.inject({ url: `/v1/registries/local/repositories/team%2Fmany/tags?${q}`, headers: viewer })
      ).json()
    })
    t.same(
      tags.map((tag: { name: string }) => tag.name),
      fx.many.tags,
    )
    t.ok(
      tags.every((tag: { sharedWith: string[] }) => tag.sharedWith.length === 24),
      'siblings span every page',
    )
  })

  t.test('a manifest shows config, layers and a history that matches the config', async (t) => {
    const res = await app.inject({
      url: '/v1/registries/local/repositories/team%2Fapp/manifests/v2',
      headers: viewer,
    })
    t.equal(res.statusCode, 200)
    const view = res.json()
    t.equal(view.digest, fx.docker.digest)
    t.equal(view.config.digest, fx.docker.config.digest)
    t.equal(view.config.os, 'linux')
    t.same(
      view.layers.map((l: { digest: string; size: number }) => [l.digest, l.size]),
      fx.docker.layers.map((l) => [l.digest, l.size]),
    )
    const config = JSON.parse(fx.docker.config.bytes.toString())
    t.equal(view.history.length, config.history.length)
    let layer = 0
    for (const [i, entry] of config.history.entries()) {
      t.equal(view.history[i].createdBy, entry.created_by)
      t.equal(view.history[i].emptyLayer, entry.empty_layer === true)
      t.equal(view.history[i].size, entry.empty_layer ? 0 : fx.docker.layers[layer++]!.size)
    }
    t.equal(view.totalSize, sizeOf(fx.docker))

    const index = await app.inject({
      url: `/v1/registries/local/repositories/team%2Fmulti/manifests/${fx.index.digest}`,
      headers: viewer,
    })
    t.same(
      index.json().children.map((c: { platform: { architecture: string } }) => c.platform.architecture),
      ['amd64', 'arm64'],
    )
  })

  t.test(
    'GraphQL returns the same repositories, tags, digests, sizes and sibling groups as REST',
    async (t) => {
      const gql = async (query: string, variables: Record<string, unknown> = {}) =>
        (
          await app.inject({
            method: 'POST',
            url: '/graphql',
            headers: viewer,
            payload: { query, variables },
          })
        ).json()
      const repos = await gql(
        `{ registry(name: "local") { repositories(first: 100) { nodes { name } pageInfo { hasNextPage } } } }`,
      )
      t.same(
        repos.data.registry.repositories.nodes.map((r: { name: string }) => r.name),
        ['alpha/one', 'alpha/two', 'beta/one', 'team/app', 'team/many', 'team/multi'],
      )
      for (const repository of ['team/app', 'team/multi']) {
        const rest = (
          await app.inject({
            url: `/v1/registries/local/repositories/${encodeURIComponent(repository)}/tags`,
            headers: viewer,
          })
        ).json()
        const graph = await gql(
          `query ($repo: String!) { registry(name: "local") { repository(name: $repo) { tags(first: 100) {
            nodes { name digest mediaType kind size created sharedWith platforms { digest architecture size } manifest { digest totalSize } }
          } } } }`,
          { repo: repository },
        )
        t.notOk(graph.errors, 'no errors')
        const nodes = graph.data.registry.repository.tags.nodes
        t.same(
          nodes.map((n: Record<string, unknown>) => [
            n.name,
            n.digest,
            n.mediaType,
            n.kind,
            n.size,
            n.created,
            n.sharedWith,
          ]),
          rest.items.map((i: Record<string, unknown>) => [
            i.name,
            i.digest,
            i.mediaType,
            i.kind,
            i.size,
            i.created ?? null,
            i.sharedWith,
          ]),
          `${repository}: same tags as REST`,
        )
        for (const node of nodes) t.equal(node.manifest.digest, node.digest, 'a tag resolves its manifest')
      }
      const paged = []
      let after: string | null = null
      do {
        const page: {
          data: {
            registry: {
              repository: {
                tags: {
                  nodes: { name: string }[]
                  pageInfo: { endCursor: string | null; hasNextPage: boolean }
                }
              }
            }
          }
        } = await gql(
          `query ($after: String) { registry(name: "local") { repository(name: "team/many") { tags(first: 10, after: $after) {
            nodes { name } pageInfo { hasNextPage endCursor } } } } }`,
          { after },
        )
        const tags = page.data.registry.repository.tags
        paged.push(...tags.nodes.map((n) => n.name))
        after = tags.pageInfo.hasNextPage ? tags.pageInfo.endCursor : null
      } while (after)
      t.same(paged, fx.many.tags, 'GraphQL pagination has no gaps or repeats')
    },
  )

  t.test('GraphQL errors carry the REGENT code; deep queries are refused', async (t) => {
    const gql = async (query: string) =>
      (await app.inject({ method: 'POST', url: '/graphql', headers: viewer, payload: { query } })).json()
    const unknown = await gql(`{ registry(name: "nope") { name } }`)
    t.equal(unknown.errors[0].extensions.code, 'REGENT_REGISTRY_UNKNOWN')
    const badName = await gql(
      `{ registry(name: "local") { repository(name: "UPPER") { tags { nodes { name } } } } }`,
    )
    t.equal(badName.errors[0].extensions.code, 'REGENT_INVALID_REFERENCE')
    const invalid = await gql(`{ nosuchfield }`)
    t.equal(invalid.errors[0].extensions.code, 'REGENT_GRAPHQL_INVALID')
    const shallow = await build(t, {
      config: { registries: [registryConfig(fx.registry, { name: 'local' })], graphql: { maxDepth: 4 } },
    })
    const deep = await shallow.inject({
      method: 'POST',
      url: '/graphql',
      headers: viewer,
      payload: {
        query: `{ registry(name: "local") { repositories { nodes { tags { nodes { name } } } } } }`,
      },
    })
    t.equal(deep.statusCode, 400)
    t.equal(
      deep.json().errors[0].extensions.code,
      'REGENT_GRAPHQL_INVALID',
      'a query deeper than graphql.maxDepth is refused',
    )
    const noToken = await app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: '{ me { subject } }' },
    })
    t.equal(noToken.statusCode, 401)
    t.match(noToken.headers['www-authenticate'], /^Bearer /)
    t.equal(noToken.json().errors[0].extensions.code, 'REGENT_UNAUTHENTICATED')
    t.equal(noToken.json().data, null)
  })

  t.test(
    'errors: unknown registry 404, unknown tag 404, bad names 400, bad cursor 400, no token 401',
    async (t) => {
      const cases: [string, number, string][] = [
        ['/v1/registries/nope/repositories', 404, 'REGENT_REGISTRY_UNKNOWN'],
        ['/v1/registries/local/repositories/team%2Fapp/manifests/nope', 404, 'REGENT_TAG_NOT_FOUND'],
        ['/v1/registries/local/repositories/UPPER/tags', 400, 'REGENT_INVALID_REFERENCE'],
        [
          '/v1/registries/local/repositories/team%2Fapp/manifests/sha256:abc',
          400,
          'REGENT_INVALID_REFERENCE',
        ],
        ['/v1/registries/local/repositories/team%2Fapp/tags?cursor=bm9wZQ', 400, 'REGENT_INVALID_CURSOR'],
        ['/v1/registries/local/repositories?limit=0', 400, 'REGENT_VALIDATION'],
      ]
      for (const [url, status, code] of cases) {
        const res = await app.inject({ url, headers: viewer })
        t.equal(res.statusCode, status, url)
        t.equal(res.json().error.code, code, url)
      }
      t.equal((await app.inject({ url: '/v1/registries' })).statusCode, 401)
      const noRole = await app.inject({ url: '/v1/registries', headers: authHeaders({ sub: 'nobody' }) })
      t.equal(noRole.statusCode, 403)
    },
  )
})

t.test('two registries, one with token auth, are browsed side by side', async (t) => {
  const open = await withRegistry(t)
  const secured = await withRegistry(t, { auth: 'token' })
  const openClient = new RegistryClient(registryConfig(open))
  const securedClient = new RegistryClient(registryConfig(secured), { env: registryEnv(secured) })
  t.teardown(() => Promise.all([openClient.close(), securedClient.close()]))
  const a = await pushImage(openClient, 'shared/name', { tags: ['a'] })
  const b = await pushImage(securedClient, 'shared/name', { tags: ['b'] })

  const app = await build(t, {
    config: {
      registries: [registryConfig(open, { name: 'open' }), registryConfig(secured, { name: 'secured' })],
    },
    env: registryEnv(secured),
  })
  const tagsOf = async (registry: string) =>
    (
      await app.inject({ url: `/v1/registries/${registry}/repositories/shared%2Fname/tags`, headers: viewer })
    ).json()
  t.same(
    (await tagsOf('open')).items.map((tag: { name: string; digest: string }) => [tag.name, tag.digest]),
    [['a', a.digest]],
  )
  t.same(
    (await tagsOf('secured')).items.map((tag: { name: string; digest: string }) => [tag.name, tag.digest]),
    [['b', b.digest]],
  )
  const ready = await app.inject({ url: '/readyz' })
  t.same(ready.json().checks.registries, [
    { name: 'open', status: 'ok' },
    { name: 'secured', status: 'ok' },
  ])
})

t.test('a down registry degrades readiness without making the process unready', async (t) => {
  const app = await build(t, {
    config: {
      registries: [
        {
          name: 'gone',
          url: 'http://127.0.0.1:9',
          timeouts: { connectMs: 200, headersMs: 200, bodyMs: 200 },
          retries: 0,
        },
      ],
    },
  })
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.equal(ready.json().status, 'degraded')
  t.same(ready.json().checks.registries, [{ name: 'gone', status: 'unreachable' }])
})
