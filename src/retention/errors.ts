import createError from '@fastify/error'

/** Retention's part of the error catalogue (spread into `errors` in src/errors.ts). */
export const retentionErrors = {
  POLICY_NOT_FOUND: createError('REGENT_POLICY_NOT_FOUND', 'Retention policy %s not found', 404),
  POLICY_RUN_NOT_FOUND: createError(
    'REGENT_POLICY_RUN_NOT_FOUND',
    'Run %s of retention policy %s not found',
    404,
  ),
  POLICY_NAME_TAKEN: createError('REGENT_POLICY_NAME_TAKEN', 'A retention policy named %s exists', 409),
  POLICY_TARGETS_MOVED: createError('REGENT_POLICY_TARGETS_MOVED', 'Refused: %s', 409),
  INVALID_POLICY: createError('REGENT_INVALID_POLICY', 'Invalid retention policy: %s', 400),
} as const
