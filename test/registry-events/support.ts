import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { RegistryConfig } from '../../src/registries/config-schema.js'
import { registryConfig } from '../helpers/registry.js'

/** Envelopes shaped as distribution 2.8 sends them (captured from a real docker-registry). */

export const SECRET = 'event-secret-0123456789'
export const SECRET_ENV = 'REGENT_TEST_EVENTS_SECRET'
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

/** `hub` takes events; `quiet` does not. Neither is ever called: events need no registry process. */
export function eventRegistries(url = 'http://127.0.0.1:9'): RegistryConfig[] {
  return [
    registryConfig({ url }, { name: 'hub', events: { secretEnv: SECRET_ENV } }),
    registryConfig({ url }, { name: 'quiet' }),
  ]
}

export function randomDigest(): string {
  return `sha256:${randomBytes(32).toString('hex')}`
}

export interface EventSpec {
  action?: string
  repository?: string
  digest?: string
  tag?: string
  timestamp: string
  id?: string
  mediaType?: string
  method?: string
  userAgent?: string
}

export function manifestEvent(spec: EventSpec): Record<string, unknown> {
  const repository = spec.repository ?? 'team/app'
  const digest = spec.digest ?? randomDigest()
  return {
    id: spec.id ?? randomUUID(),
    timestamp: spec.timestamp,
    action: spec.action ?? 'push',
    target: {
      mediaType: spec.mediaType ?? OCI_MANIFEST,
      size: 396,
      digest,
      length: 396,
      repository,
      url: `http://127.0.0.1:5000/v2/${repository}/manifests/${digest}`,
      ...(spec.tag === undefined ? {} : { tag: spec.tag }),
    },
    request: {
      id: randomUUID(),
      addr: '127.0.0.1:41318',
      host: '127.0.0.1:5000',
      method: spec.method ?? (spec.action === 'pull' ? 'GET' : 'PUT'),
      useragent: spec.userAgent ?? 'containerd/1.7',
    },
    actor: {},
    source: { addr: 'registry:5000', instanceID: randomUUID() },
  }
}

export function blobEvent(timestamp: string, repository = 'team/app'): Record<string, unknown> {
  const digest = randomDigest()
  return {
    id: randomUUID(),
    timestamp,
    action: 'push',
    target: {
      mediaType: 'application/octet-stream',
      size: 200,
      digest,
      length: 200,
      repository,
      url: `http://127.0.0.1:5000/v2/${repository}/blobs/${digest}`,
    },
    request: { method: 'PUT', useragent: 'containerd/1.7' },
    actor: {},
    source: {},
  }
}

export function postEvents(
  app: FastifyInstance,
  events: unknown[] | unknown,
  options: { registry?: string; secret?: string | null; contentType?: string; raw?: string } = {},
) {
  const headers: Record<string, string> = { 'content-type': options.contentType ?? EVENTS_MEDIA_TYPE }
  if (options.secret !== null) headers['x-regent-event-secret'] = options.secret ?? SECRET
  return app.inject({
    method: 'POST',
    url: `/v1/registries/${options.registry ?? 'hub'}/events`,
    headers,
    payload: options.raw ?? JSON.stringify(Array.isArray(events) ? { events } : events),
  })
}

/** Row counts of the events tables: "nothing stored" is all of them unchanged. */
export async function storedRows(app: FastifyInstance): Promise<Record<string, number>> {
  const { rows } = await app.db.query<{ t: string; n: number }>(
    `SELECT 'ids' AS t, count(*)::int AS n FROM registry_event_ids
     UNION ALL SELECT 'digests', count(*)::int FROM registry_digest_activity
     UNION ALL SELECT 'tags', count(*)::int FROM registry_tag_activity`,
  )
  return Object.fromEntries(rows.map((r) => [r.t, r.n]))
}
