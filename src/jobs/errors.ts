import createError from '@fastify/error'

/** The job queue's part of the error catalogue (spread into `errors` in src/errors.ts). */
export const jobErrors = {
  JOB_NOT_FOUND: createError('REGENT_JOB_NOT_FOUND', 'Job %s not found', 404),
} as const
