import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Counter } from 'prom-client'
import { Type } from 'typebox'
import { errorResponses } from '../http/error-schema.js'
import { requestContext } from '../http/request-context.js'
import type { SecretEnv } from '../lib/secrets.js'
import type { RegistryConfig } from '../registries/config-schema.js'
import { EVENT_SECRET_HEADER, EVENTS_MEDIA_TYPE, EventCountsSchema, EventEnvelopeSchema } from './schemas.js'
import { resolveEventSecrets } from './secrets.js'
import { RegistryEventsService } from './service.js'

export interface RegistryEventRoutesOptions {
  registries: RegistryConfig[]
  /** Requests per client address and window (config publicRoutes.rateLimit). */
  rateLimit: { max: number; windowMs: number }
  /** Where `events.secretEnv` is read. */
  env: SecretEnv
}

/**
 * The notification endpoint registries post to. It is public (no JWT: a registry cannot get one);
 * the per-registry secret header authenticates it, checked before the body is read so that an
 * unauthenticated sender learns nothing from body validation. The rate limit comes first of all.
 */
export const registryEventRoutes: FastifyPluginAsyncTypebox<RegistryEventRoutesOptions> = async (
  app,
  { registries, env, rateLimit },
) => {
  const service = new RegistryEventsService({
    pool: app.db,
    secrets: resolveEventSecrets(registries, env),
    log: app.log,
    refusals: app.refusals,
  })
  // Per registry (a label bounded by the config): shows whether a registry still sends, and how
  // much of it Regent ignores. Refused envelopes show in regent_http_requests_total as 401s.
  const taken = new Counter({
    name: 'regent_registry_events_total',
    help: 'Registry notification events received, by registry and outcome (accepted, duplicate, ignored)',
    labelNames: ['registry', 'outcome'] as const,
    registers: [app.metrics],
  })
  app.addSchema(EventCountsSchema)
  // distribution sends its own media type; this plugin is encapsulated, so the parser is ours only.
  app.addContentTypeParser(
    EVENTS_MEDIA_TYPE,
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'ignore'),
  )

  app.post(
    '/v1/registries/:registry/events',
    {
      config: { public: true, rateLimit: app.refusals.rateLimit('registry-events', rateLimit) },
      preParsing: async (request) => {
        const { registry } = request.params as { registry: string }
        service.authenticate(registry, request.headers[EVENT_SECRET_HEADER], requestContext(request))
      },
      schema: {
        tags: ['registry-events'],
        security: [{ registryEventSecret: [] }],
        summary: 'Notifications from a registry: manifest pushes and pulls (distribution envelope)',
        description:
          'For the registry itself, not for people: authenticated by the `X-Regent-Event-Secret` header (the secret named by `registries[].events.secretEnv`), no bearer token. Events are deduplicated by id; push and pull times are kept per digest and per tag. Answers 200 with counts as soon as the envelope is recorded, since a registry retries anything else and holds up its queue meanwhile.',
        consumes: [EVENTS_MEDIA_TYPE, 'application/json'],
        params: Type.Object({ registry: Type.String({ minLength: 1, maxLength: 63 }) }),
        body: EventEnvelopeSchema,
        response: { 200: Type.Ref('RegistryEventCounts'), ...errorResponses(400, 401, 404, 413, 415, 429) },
      },
    },
    async (request) => {
      const { registry } = request.params
      const counts = await service.ingest(registry, request.body.events)
      taken.inc({ registry, outcome: 'accepted' }, counts.accepted)
      taken.inc({ registry, outcome: 'duplicate' }, counts.duplicates)
      taken.inc({ registry, outcome: 'ignored' }, counts.ignored)
      return counts
    },
  )
}
