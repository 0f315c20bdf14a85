import createError from '@fastify/error'

/** Garbage collection's part of the error catalogue (spread into `errors` in src/errors.ts). */
export const gcErrors = {
  GC_ALREADY_RUNNING: createError(
    'REGENT_GC_ALREADY_RUNNING',
    'A garbage collection of registry %s is already %s (run %s)',
    409,
  ),
  GC_NOT_CONFIGURED: createError(
    'REGENT_GC_NOT_CONFIGURED',
    'Registry %s has no gc section in the config, so Regent cannot collect its garbage',
    409,
  ),
  GC_RUN_NOT_FOUND: createError('REGENT_GC_RUN_NOT_FOUND', 'GC run %s not found', 404),
} as const
