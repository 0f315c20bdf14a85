import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { inUsePolicy } from '../../src/governance/index.js'
import { parseImageId, parseImageReference, RegistryHosts } from '../../src/usage/image-reference.js'
import { buildVerdicts, describeUsage } from '../../src/usage/verdict.js'

const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`

t.test('image references parse as container runtimes read them', async (t) => {
  t.same(parseImageReference('nginx'), {
    host: 'docker.io',
    repository: 'library/nginx',
    tag: 'latest',
    digest: null,
  })
  t.same(parseImageReference('bitnami/redis:7.2'), {
    host: 'docker.io',
    repository: 'bitnami/redis',
    tag: '7.2',
    digest: null,
  })
  t.same(parseImageReference(`registry.example.com:5000/payments/api:1.4@${D1}`), {
    host: 'registry.example.com:5000',
    repository: 'payments/api',
    tag: '1.4',
    digest: D1,
  })
  t.same(parseImageReference(`localhost/team/app@${D2}`), {
    host: 'localhost',
    repository: 'team/app',
    tag: null,
    digest: D2,
  })
  t.equal(parseImageReference('index.docker.io/library/busybox:1')?.host, 'docker.io')
  t.equal(parseImageReference('Registry.Example.com:443/a/b:1')?.host, 'registry.example.com')
  t.equal(parseImageReference('team/app:1')?.host, 'docker.io', 'a first segment without . or : is a path')
  t.equal(
    parseImageReference('Mirror/app')?.host,
    'mirror',
    'an upper-case first segment is a host (distribution)',
  )
  t.equal(parseImageReference(''), undefined)
  t.equal(parseImageReference('repo@sha256:abc'), undefined, 'a short digest is refused')
  t.equal(parseImageReference('repo:bad tag'), undefined)
})

t.test('both imageID forms give the digest a pod runs', async (t) => {
  t.same(parseImageId(`docker-pullable://registry.example.com/payments/api@${D1}`), {
    reference: { host: 'registry.example.com', repository: 'payments/api', tag: null, digest: D1 },
    digest: D1,
  })
  t.same(parseImageId(D2), { reference: null, digest: D2 })
  t.same(parseImageId(`docker://${D2}`), { reference: null, digest: D2 })
  t.equal(parseImageId(`registry.example.com/payments/api@${D1}`)?.digest, D1, 'containerd form')
  t.equal(parseImageId(''), undefined)
  t.equal(parseImageId('registry.example.com/payments/api:1'), undefined, 'a tag is not an image id')
})

t.test('hosts map to configured registries by URL host and aliases', async (t) => {
  const hosts = new RegistryHosts([
    { name: 'local', url: 'http://127.0.0.1:5000', aliases: ['registry.internal:5000'] },
    { name: 'prod', url: 'https://registry.example.com', aliases: ['mirror.example.com', 'docker.io'] },
  ])
  t.equal(hosts.registryOf('127.0.0.1:5000'), 'local')
  t.equal(hosts.registryOf('registry.internal:5000'), 'local')
  t.equal(hosts.registryOf('registry.example.com'), 'prod')
  t.equal(hosts.registryOf('registry.example.com:443'), 'prod', 'the default port is the same host')
  t.equal(hosts.registryOf('MIRROR.example.com'), 'prod')
  t.equal(hosts.registryOf('index.docker.io'), 'prod', 'Docker Hub by any of its names')
  t.equal(hosts.registryOf('quay.io'), undefined)
})

t.test('a verdict counts running digests, digest references and current tags only', async (t) => {
  const place = (over: object) => ({
    source: 'prod',
    cluster: 'prod',
    namespace: 'payments',
    kind: 'Deployment',
    name: 'api',
    container: 'app',
    digest: null,
    tag: null,
    running: false,
    pods: 0,
    first_seen_at: '2026-11-01T10:00:00Z',
    ...over,
  })
  const lookup = {
    places: [
      place({ digest: D1, running: true, pods: 3 }),
      place({ tag: 'v1', pods: 3 }),
      place({ kind: 'CronJob', name: 'nightly', namespace: 'batch', tag: 'nightly' }),
    ],
    sources: [{ name: 'prod', age_ms: 1000 }],
  }
  const pulls = new Map([[D2, new Date(Date.now() - 3 * 86_400_000)]])
  const covering = [{ name: 'prod', staleAfterMs: 60_000 }]
  const verdicts = buildVerdicts(
    [
      { digest: D1, tags: ['v1'] },
      { digest: D2, tags: ['old'] },
    ],
    lookup,
    pulls,
    covering,
  )
  const v1 = verdicts.get(D1)
  t.equal(v1?.status, 'in-use')
  t.equal(v1?.where.length, 1, 'the running pods and the tag reference are one place')
  t.equal(v1?.where[0]?.by, 'running', 'running is the stronger statement')
  t.equal(describeUsage(v1!), 'running in prod/payments deploy/api, 3 pods')
  const v2 = verdicts.get(D2)
  t.equal(v2?.status, 'unused', 'nightly is not one of its tags now')
  t.equal(describeUsage(v2!), 'not in use; pulled 3d ago')

  const moved = buildVerdicts([{ digest: D2, tags: ['nightly'] }], lookup, pulls, covering).get(D2)
  t.equal(describeUsage(moved!), 'referenced by tag nightly in prod/batch cronjob/nightly')

  const stale = buildVerdicts([{ digest: D2, tags: [] }], { ...lookup, sources: [] }, pulls, covering).get(D2)
  t.equal(stale?.status, 'unknown', 'a source that never synced vouches for nothing')
  t.same(stale?.staleSources, ['prod'])
  const old = buildVerdicts(
    [{ digest: D2, tags: [] }],
    { ...lookup, sources: [{ name: 'prod', age_ms: 120_000 }] },
    pulls,
    covering,
  )
  t.equal(old.get(D2)?.status, 'unknown', 'past its staleness limit')
  t.equal(
    buildVerdicts([{ digest: D1, tags: [] }], { ...lookup, sources: [] }, pulls, covering).get(D1)?.status,
    'in-use',
    'what a stale source last saw still counts as in use',
  )
})

t.test('inUsePolicy: the first matching override, else the default (refuse)', async (t) => {
  const config = loadConfig(
    {},
    {
      governance: {
        inUse: {
          overrides: [
            { registry: 'dev', repositories: '**', level: 'warn', reason: 'dev is scratch' },
            { repositories: 'payments/**', level: 'admin-only' },
          ],
        },
      },
    },
  )
  t.equal(inUsePolicy(config.governance, 'dev', 'payments/api').level, 'warn')
  t.match(inUsePolicy(config.governance, 'dev', 'x').rule, /overrides\[0\].*dev is scratch/)
  t.equal(inUsePolicy(config.governance, 'prod', 'payments/api').level, 'admin-only')
  t.equal(inUsePolicy(config.governance, 'prod', 'search/api').level, 'refuse')
  t.equal(inUsePolicy(loadConfig({}).governance, 'prod', 'x').level, 'refuse', 'fail closed by default')
})
