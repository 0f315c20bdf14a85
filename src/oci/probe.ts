import { randomBytes } from 'node:crypto'
import { type AuthKind, scopes } from './auth.js'
import { type Classification, isRegistryError } from './errors.js'
import { listField } from './listing.js'
import { MediaTypes } from './media-types.js'
import { assertRepository } from './reference.js'
import { answeredByApi } from './referrers.js'
import { ERROR_BODY_BYTES, type PingResult, type Transport } from './transport.js'

export interface Capabilities {
  probedAt: Date
  reachable: boolean
  authKind: AuthKind | undefined
  /** The configured credentials were accepted at `/v2/` (undefined for anonymous registries). */
  authenticated: boolean | undefined
  apiVersion: string | undefined
  catalog: boolean | undefined
  /** undefined when it could not be told (no repository to probe in, or no delete permission). */
  deleteEnabled: boolean | undefined
  tagDelete: boolean | undefined
  referrersApi: boolean | undefined
  /** Repository the delete and referrers probes ran in. */
  probeRepository: string | undefined
  notes: string[]
}

/**
 * What a registry can do, probed without changing anything: deletes and tag deletes are probed
 * with a random digest and a random tag that cannot exist, so a registry that deletes whatever a
 * tag points to still deletes nothing. Each step that fails leaves its capability unknown and a
 * note; the others still run.
 */
export async function probeCapabilities(
  transport: Transport,
  repository: string | undefined,
): Promise<Capabilities> {
  const caps: Capabilities = {
    probedAt: new Date(),
    reachable: false,
    authKind: undefined,
    authenticated: undefined,
    apiVersion: undefined,
    catalog: undefined,
    deleteEnabled: undefined,
    tagDelete: undefined,
    referrersApi: undefined,
    probeRepository: repository === undefined ? undefined : assertRepository(repository),
    notes: [],
  }
  let ping: PingResult
  try {
    ping = await transport.ping(true)
  } catch (err) {
    // Any HTTP answer (even a refused realm) proves the registry is reachable.
    caps.reachable = !(isRegistryError(err) && err.outcome === 'network')
    caps.notes.push(`ping failed: ${(err as Error).message}`)
    return caps
  }
  transport.authLearned(ping)
  Object.assign(caps, { reachable: true, authKind: ping.authKind, apiVersion: ping.apiVersion })
  await probeStep(caps, 'login', async () => {
    if (ping.authKind !== 'none') caps.authenticated = await probeLogin(transport)
  })
  await probeStep(caps, 'catalog', async () => {
    const first = await probeCatalog(transport, caps)
    caps.probeRepository ??= first
  })
  const repo = caps.probeRepository
  if (repo === undefined) {
    caps.notes.push('no repository to probe deletes and referrers in')
    return caps
  }
  await probeStep(caps, 'delete', () => probeDeletes(transport, caps, repo))
  await probeStep(caps, 'referrers', async () => {
    caps.referrersApi = await probeReferrers(transport, repo)
  })
  return caps
}

/** A failing probe step leaves its capability unknown and a note; the others still run. */
async function probeStep(caps: Capabilities, step: string, run: () => Promise<void>): Promise<void> {
  try {
    await run()
  } catch (err) {
    if (!isRegistryError(err)) throw err
    caps.notes.push(`${step} probe failed: ${err.message}`)
  }
}

/** A token without scope (what `docker login` asks for) or Basic credentials at `/v2/`. */
async function probeLogin(transport: Transport): Promise<boolean> {
  try {
    const reply = await transport.exchange({
      method: 'GET',
      path: transport.path('/v2/'),
      scope: scopes.login,
    })
    return reply.status === 200
  } catch (err) {
    if (isRegistryError(err) && err.code === 'REGENT_REGISTRY_AUTH_FAILED') return false
    throw err
  }
}

async function probeCatalog(transport: Transport, caps: Capabilities): Promise<string | undefined> {
  const reply = await transport.exchange({
    method: 'GET',
    path: transport.path('/v2/_catalog?n=1'),
    scope: scopes.catalog,
    maxBytes: ERROR_BODY_BYTES,
  })
  caps.catalog = reply.status === 200
  if (!caps.catalog) return undefined
  return listField(reply.body, 'repositories', transport.registry)[0]
}

/**
 * distribution answers 405 `UNSUPPORTED` when deletes are disabled *before* looking the digest
 * up, so a random digest tells without deleting anything; 404 (or 202) means enabled. For a
 * tag, distribution 2.8 answers 400 `DIGEST_INVALID` (tag delete not implemented) while v3
 * answers 404 `MANIFEST_UNKNOWN` for an unknown tag: the answer is read, not assumed.
 */
async function probeDeletes(transport: Transport, caps: Capabilities, repository: string): Promise<void> {
  const digestProbe = await probeDelete(transport, repository, `sha256:${randomBytes(32).toString('hex')}`)
  caps.deleteEnabled = deletable(digestProbe)
  if (caps.deleteEnabled === undefined) caps.notes.push(`delete probe answered ${describe(digestProbe)}`)
  if (caps.deleteEnabled === false) {
    caps.tagDelete = false
    return
  }
  const tagProbe = await probeDelete(transport, repository, `regent-probe-${randomBytes(8).toString('hex')}`)
  caps.tagDelete = deletable(tagProbe)
  if (caps.tagDelete === undefined) caps.notes.push(`tag delete probe answered ${describe(tagProbe)}`)
}

async function probeDelete(
  transport: Transport,
  repository: string,
  reference: string,
): Promise<Classification> {
  const path = transport.path(`/v2/${repository}/manifests/${reference}`)
  const reply = await transport.exchange({ method: 'DELETE', path, scope: scopes.delete(repository) })
  return reply.classification
}

async function probeReferrers(transport: Transport, repository: string): Promise<boolean> {
  const digest = `sha256:${randomBytes(32).toString('hex')}`
  const reply = await transport.exchange({
    method: 'GET',
    path: transport.path(`/v2/${repository}/referrers/${digest}`),
    scope: scopes.pull(repository),
    headers: { accept: MediaTypes.OciIndex },
    maxBytes: ERROR_BODY_BYTES,
  })
  return answeredByApi(reply)
}

/** Probe answer → capability: 202/404 yes, 400/405/UNSUPPORTED no, anything else unknown. */
function deletable(c: Classification): boolean | undefined {
  if (c.outcome === 'ok' || c.outcome === 'not_found') return true
  if (c.outcome === 'delete_disabled') return false
  return undefined
}

function describe(c: Classification): string {
  return [c.status ?? c.network ?? c.outcome, c.ociCode].filter((p) => p !== undefined).join(' ')
}
