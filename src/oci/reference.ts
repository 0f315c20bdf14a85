import { createHash } from 'node:crypto'
import { ociErrors } from './errors.js'

/**
 * Grammar of names, tags and digests from the OCI distribution spec (§Pulling manifests) and
 * distribution's `reference/regexp.go`. Every client method checks its input here before anything
 * is sent, so a bad name never reaches a registry (and a name such as `../x` can never walk a
 * path on a proxy in between).
 */

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
const DIGESTS = {
  sha256: /^sha256:[a-f0-9]{64}$/,
  sha512: /^sha512:[a-f0-9]{128}$/,
} as const

/** The spec lets clients cap names at 255 characters; distribution refuses longer ones. */
export const MAX_REPOSITORY_LENGTH = 255

export type DigestAlgorithm = keyof typeof DIGESTS

export function isRepositoryName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_REPOSITORY_LENGTH) return false
  return name.split('/').every((component) => COMPONENT.test(component))
}

export function isTag(tag: string): boolean {
  return TAG.test(tag)
}

/** Only sha256 and sha512 are accepted: the algorithms the OCI image spec registers. */
export function isDigest(digest: string): boolean {
  return DIGESTS.sha256.test(digest) || DIGESTS.sha512.test(digest)
}

export function assertRepository(name: string): string {
  if (typeof name !== 'string' || !isRepositoryName(name)) {
    throw new ociErrors.INVALID_REFERENCE('repository name', preview(name))
  }
  return name
}

export function assertTag(tag: string): string {
  if (typeof tag !== 'string' || !isTag(tag)) throw new ociErrors.INVALID_REFERENCE('tag', preview(tag))
  return tag
}

export function assertDigest(digest: string): string {
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new ociErrors.INVALID_REFERENCE('digest', preview(digest))
  }
  return digest
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string }

/** A manifest reference is a tag or a digest; anything with a colon must be a valid digest. */
export function parseReference(ref: string): Reference {
  if (typeof ref === 'string' && ref.includes(':')) return { kind: 'digest', digest: assertDigest(ref) }
  return { kind: 'tag', tag: assertTag(ref) }
}

export function digestAlgorithm(digest: string): DigestAlgorithm {
  return assertDigest(digest).startsWith('sha512:') ? 'sha512' : 'sha256'
}

export function digestOf(bytes: Buffer, algorithm: DigestAlgorithm): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
}

/** Keep error messages short and printable whatever the caller sent. */
function preview(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value)
  const clean = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)
  return text.length > 80 ? `${clean} (${text.length} characters)` : clean
}
