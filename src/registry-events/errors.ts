import createError from '@fastify/error'

/** Registry events' part of the error catalogue (spread into `errors` in src/errors.ts). */
export const registryEventErrors = {
  EVENTS_NOT_ENABLED: createError(
    'REGENT_EVENTS_NOT_ENABLED',
    'Registry %s has no events section in the config, so Regent takes no events from it',
    404,
  ),
  EVENTS_UNAUTHENTICATED: createError(
    'REGENT_EVENTS_UNAUTHENTICATED',
    'A valid X-Regent-Event-Secret header is required',
    401,
  ),
} as const
