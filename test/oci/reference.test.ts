import t from 'tap'
import { RegistryClient } from '../../src/oci/client.js'
import { MediaTypes } from '../../src/oci/media-types.js'
import {
  assertDigest,
  assertRepository,
  assertTag,
  isDigest,
  isRepositoryName,
  isTag,
  parseReference,
} from '../../src/oci/reference.js'
import { startCaptureServer } from '../helpers/capture-server.js'
import { registryConfig } from '../helpers/registry.js'

const SHA256 = `sha256:${'a'.repeat(64)}`
const SHA512 = `sha512:${'b'.repeat(128)}`
const LONG_NAME = Array.from({ length: 30 }, () => 'abcdefghi').join('/') // 299 characters

const goodNames = [
  'a',
  'library/ubuntu',
  'a/b/c',
  'my-app',
  'my--app',
  'my.app',
  'my_app',
  'my__app',
  'a0/b-1.c_2',
]
const badNames = [
  'UPPER',
  'Upper/case',
  'a//b',
  '../x',
  './x',
  '/leading',
  'trailing/',
  '',
  'a/../b',
  'a.',
  '-a',
  'a___b',
  'a..b',
  'a b',
  'a%2fb',
  'a:b',
  LONG_NAME,
]
const goodTags = ['latest', 'v1.2.3', '_private', 'A-b_c.d', 'x'.repeat(128)]
const badTags = ['', '.hidden', '-dash', 'a/b', 'a:b', 'x'.repeat(129), 'tag with space', '../etc']
const goodDigests = [SHA256, SHA512]
const badDigests = [
  `sha256:${'a'.repeat(63)}`,
  `sha256:${'A'.repeat(64)}`,
  `sha384:${'a'.repeat(96)}`,
  `md5:${'a'.repeat(32)}`,
  `sha512:${'b'.repeat(64)}`,
  'sha256:',
  `SHA256:${'a'.repeat(64)}`,
]

t.test('repository names follow the distribution grammar', async (t) => {
  for (const name of goodNames) t.ok(isRepositoryName(name), `accepts ${name}`)
  for (const name of badNames) t.notOk(isRepositoryName(name), `refuses ${JSON.stringify(name.slice(0, 40))}`)
  t.equal(LONG_NAME.length, 299)
  t.ok(isRepositoryName('a'.repeat(255)) && !isRepositoryName('a'.repeat(256)), 'at most 255 characters')
  t.throws(() => assertRepository('UPPER'), { code: 'REGENT_INVALID_REFERENCE', statusCode: 400 })
})

t.test('tags and digests follow the spec grammar; only sha256 and sha512', async (t) => {
  for (const tag of goodTags) t.ok(isTag(tag), `accepts tag ${tag.slice(0, 20)}`)
  for (const tag of badTags) t.notOk(isTag(tag), `refuses tag ${JSON.stringify(tag.slice(0, 20))}`)
  for (const digest of goodDigests) t.ok(isDigest(digest), `accepts ${digest.slice(0, 12)}`)
  for (const digest of badDigests) t.notOk(isDigest(digest), `refuses ${digest.slice(0, 12)}`)
  t.throws(() => assertTag('.x'), { code: 'REGENT_INVALID_REFERENCE' })
  t.throws(() => assertDigest(`md5:${'a'.repeat(32)}`), { code: 'REGENT_INVALID_REFERENCE' })
  t.same(parseReference('v1'), { kind: 'tag', tag: 'v1' })
  t.same(parseReference(SHA256), { kind: 'digest', digest: SHA256 })
  t.throws(() => parseReference('sha256:short'), { code: 'REGENT_INVALID_REFERENCE' })
})

t.test('invalid names, tags and digests are refused before any request leaves', async (t) => {
  const capture = await startCaptureServer()
  t.teardown(capture.stop)
  const client = new RegistryClient(registryConfig(capture))
  t.teardown(() => client.close())
  const manifest = Buffer.from(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
  )

  const calls: Array<[string, () => Promise<unknown>]> = []
  for (const name of badNames) {
    calls.push(
      [`headManifest(${name.slice(0, 20)})`, () => client.headManifest(name, 'v1')],
      [`getManifest(${name.slice(0, 20)})`, () => client.getManifest(name, SHA256)],
      [`deleteManifest(${name.slice(0, 20)})`, () => client.deleteManifest(name, SHA256)],
      [`deleteTag(${name.slice(0, 20)})`, () => client.deleteTag(name, 'v1')],
      [
        `putManifest(${name.slice(0, 20)})`,
        () => client.putManifest(name, 'v1', MediaTypes.OciIndex, manifest),
      ],
      [`pushBlob(${name.slice(0, 20)})`, () => client.pushBlob(name, Buffer.from('x'))],
      [`headBlob(${name.slice(0, 20)})`, () => client.headBlob(name, SHA256)],
      [`referrers(${name.slice(0, 20)})`, () => client.referrers(name, SHA256)],
      [`tags(${name.slice(0, 20)})`, () => client.tags(name).next()],
    )
  }
  for (const tag of badTags) {
    calls.push(
      [`headManifest tag ${tag.slice(0, 20)}`, () => client.headManifest('ok/repo', tag)],
      [`deleteTag ${tag.slice(0, 20)}`, () => client.deleteTag('ok/repo', tag)],
      [
        `putManifest tag ${tag.slice(0, 20)}`,
        () => client.putManifest('ok/repo', tag, MediaTypes.OciIndex, manifest),
      ],
    )
  }
  for (const digest of badDigests) {
    calls.push(
      [`getManifest ${digest.slice(0, 12)}`, () => client.getManifest('ok/repo', digest)],
      [`deleteManifest ${digest.slice(0, 12)}`, () => client.deleteManifest('ok/repo', digest)],
      [`getBlob ${digest.slice(0, 12)}`, () => client.getBlob('ok/repo', digest)],
      [`headBlob ${digest.slice(0, 12)}`, () => client.headBlob('ok/repo', digest)],
      [`referrers ${digest.slice(0, 12)}`, () => client.referrers('ok/repo', digest)],
    )
  }
  calls.push(['catalog last=UPPER', () => client.catalog({ last: 'UPPER' }).next()])
  calls.push(['catalog n=0', () => client.catalog({ pageSize: 0 }).next()])
  calls.push(['probe in ../x', () => client.probe({ repository: '../x' })])

  for (const [label, call] of calls) {
    await t.rejects(call(), { code: 'REGENT_INVALID_REFERENCE', statusCode: 400 }, label)
  }
  t.equal(capture.requests.length, 0, `${calls.length} refused calls, zero requests received`)
})
