import createError from '@fastify/error'

/** Usage's part of the error catalogue (spread into `errors` in src/errors.ts). */
export const usageErrors = {
  USAGE_SOURCE_NOT_FOUND: createError(
    'REGENT_USAGE_SOURCE_NOT_FOUND',
    'Usage source %s is not configured',
    404,
  ),
  /** For deletion plans: the image runs or is referenced somewhere, and governance refuses it. */
  IN_USE: createError('REGENT_IN_USE', 'Refused: %s', 409),
  /** For deletion plans: a source covering the registry is stale, and unknown counts as in use. */
  USAGE_UNKNOWN: createError('REGENT_USAGE_UNKNOWN', 'Refused: %s', 409),
} as const
