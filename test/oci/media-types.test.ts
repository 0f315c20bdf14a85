import t from 'tap'
import {
  isLegacyMediaType,
  MANIFEST_ACCEPT,
  MediaTypes,
  manifestKindOf,
  parseImageConfig,
  parseManifest,
} from '../../src/oci/media-types.js'

const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`
const D3 = `sha512:${'3'.repeat(128)}`
const json = (v: unknown) => Buffer.from(JSON.stringify(v))

t.test('the Accept list names all four manifest kinds, schema 1 last', async (t) => {
  const types = MANIFEST_ACCEPT.split(', ')
  t.same(types.slice(0, 4).sort(), [
    MediaTypes.DockerManifestList,
    MediaTypes.DockerManifest,
    MediaTypes.OciIndex,
    MediaTypes.OciManifest,
  ])
  t.same(types.slice(4), [MediaTypes.DockerSchema1Signed, MediaTypes.DockerSchema1])
})

t.test('an OCI index and a Docker manifest list parse into children with platform and size', async (t) => {
  for (const mediaType of [MediaTypes.OciIndex, MediaTypes.DockerManifestList]) {
    const m = parseManifest(
      json({
        schemaVersion: 2,
        mediaType,
        manifests: [
          {
            mediaType: MediaTypes.OciManifest,
            digest: D1,
            size: 10,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: MediaTypes.OciManifest,
            digest: D2,
            size: 20,
            platform: {
              os: 'windows',
              architecture: 'amd64',
              'os.version': '10.0.1',
              variant: 'v1',
              'os.features': ['x'],
            },
            annotations: { a: 'b', n: 1 },
          },
        ],
      }),
      `${mediaType}; charset=utf-8`,
    )
    t.same(m, {
      kind: 'index',
      mediaType,
      manifests: [
        {
          mediaType: MediaTypes.OciManifest,
          digest: D1,
          size: 10,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: MediaTypes.OciManifest,
          digest: D2,
          size: 20,
          annotations: { a: 'b' },
          platform: {
            os: 'windows',
            architecture: 'amd64',
            variant: 'v1',
            osVersion: '10.0.1',
            osFeatures: ['x'],
          },
        },
      ],
    })
  }
})

t.test(
  'OCI and Docker v2 images parse into config and layers; subject and artifactType are kept',
  async (t) => {
    const oci = parseManifest(
      json({
        schemaVersion: 2,
        mediaType: MediaTypes.OciManifest,
        artifactType: 'application/vnd.example+type',
        config: { mediaType: MediaTypes.OciEmpty, digest: D1, size: 2 },
        layers: [{ mediaType: 'application/json', digest: D3, size: 5 }],
        subject: { mediaType: MediaTypes.OciManifest, digest: D2, size: 100 },
        annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
      }),
      MediaTypes.OciManifest,
    )
    t.same(oci, {
      kind: 'image',
      mediaType: MediaTypes.OciManifest,
      config: { mediaType: MediaTypes.OciEmpty, digest: D1, size: 2 },
      layers: [{ mediaType: 'application/json', digest: D3, size: 5 }],
      artifactType: 'application/vnd.example+type',
      subject: { mediaType: MediaTypes.OciManifest, digest: D2, size: 100 },
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    })
    const docker = parseManifest(
      json({
        schemaVersion: 2,
        mediaType: MediaTypes.DockerManifest,
        config: { mediaType: MediaTypes.DockerConfig, digest: D1, size: 1 },
        layers: [],
      }),
      MediaTypes.DockerManifest,
    )
    t.match(docker, { kind: 'image', mediaType: MediaTypes.DockerManifest, layers: [] })
  },
)

t.test('the kind comes from the body when the registry says application/json', async (t) => {
  const index = parseManifest(json({ schemaVersion: 2, manifests: [] }), 'application/json')
  t.match(index, { kind: 'index', mediaType: MediaTypes.OciIndex })
  const image = parseManifest(
    json({ schemaVersion: 2, config: { mediaType: MediaTypes.OciConfig, digest: D1, size: 1 }, layers: [] }),
    undefined,
  )
  t.match(image, { kind: 'image', mediaType: MediaTypes.OciManifest })
})

t.test('schema 1 manifests are recognised and labelled legacy', async (t) => {
  const body = json({ schemaVersion: 1, name: 'library/old', tag: 'v1', fsLayers: [], signatures: [] })
  t.same(parseManifest(body, MediaTypes.DockerSchema1Signed), {
    kind: 'legacy',
    mediaType: MediaTypes.DockerSchema1Signed,
    name: 'library/old',
    tag: 'v1',
  })
  t.match(parseManifest(body, 'application/json'), { kind: 'legacy' })
  t.ok(isLegacyMediaType(MediaTypes.DockerSchema1))
  t.notOk(isLegacyMediaType(MediaTypes.DockerManifest))
  t.equal(manifestKindOf('APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON'), 'index')
  t.equal(manifestKindOf('text/plain'), undefined)
})

t.test('malformed manifests are REGENT_MANIFEST_INVALID', async (t) => {
  const bad: Array<[string, Buffer, string?]> = [
    ['not JSON', Buffer.from('<html>'), MediaTypes.OciManifest],
    ['an array', json([]), MediaTypes.OciManifest],
    ['schemaVersion 3', json({ schemaVersion: 3, manifests: [] }), MediaTypes.OciIndex],
    ['index without manifests', json({ schemaVersion: 2 }), MediaTypes.OciIndex],
    [
      'image without layers',
      json({ schemaVersion: 2, config: { mediaType: 'x', digest: D1, size: 1 } }),
      MediaTypes.OciManifest,
    ],
    [
      'md5 child digest',
      json({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest: 'md5:abc', size: 1 }] }),
      MediaTypes.OciIndex,
    ],
    [
      'negative size',
      json({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest: D1, size: -1 }] }),
      MediaTypes.OciIndex,
    ],
    [
      'unknown media type',
      json({ schemaVersion: 2, mediaType: 'application/x-thing' }),
      'application/x-thing',
    ],
  ]
  for (const [label, body, type] of bad)
    t.throws(() => parseManifest(body, type), { code: 'REGENT_MANIFEST_INVALID' }, label)
})

t.test('an image config yields created, platform, labels and history', async (t) => {
  const config = parseImageConfig(
    json({
      created: '2026-01-02T03:04:05Z',
      author: 'me',
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      config: { Labels: { team: 'core', bad: 3 } },
      rootfs: { type: 'layers', diff_ids: [D1, D2] },
      history: [
        { created: '2026-01-01T00:00:00Z', created_by: 'ADD x /', comment: 'base' },
        { created_by: 'CMD ["sh"]', empty_layer: true },
        'garbage',
      ],
    }),
  )
  t.same(config, {
    created: '2026-01-02T03:04:05Z',
    author: 'me',
    os: 'linux',
    architecture: 'arm64',
    variant: 'v8',
    labels: { team: 'core' },
    diffIds: [D1, D2],
    history: [
      { created: '2026-01-01T00:00:00Z', createdBy: 'ADD x /', comment: 'base', emptyLayer: false },
      { createdBy: 'CMD ["sh"]', emptyLayer: true },
    ],
  })
  t.same(parseImageConfig(json({})), { labels: {}, history: [], diffIds: [] })
  t.throws(() => parseImageConfig(Buffer.from('nope')), { code: 'REGENT_IMAGE_CONFIG_INVALID' })
})
