import createError from '@fastify/error'

/** Chatops' part of the error catalogue (spread into `errors` in src/errors.ts). */
export const chatopsErrors = {
  SLACK_NOT_CONFIGURED: createError(
    'REGENT_SLACK_NOT_CONFIGURED',
    'Slack chatops is not configured on this server',
    404,
  ),
  // One message for every signature problem: which check failed is in the audit log, not here.
  SLACK_SIGNATURE_INVALID: createError(
    'REGENT_SLACK_SIGNATURE_INVALID',
    'The Slack request signature does not verify',
    401,
  ),
  SLACK_TIMESTAMP_STALE: createError(
    'REGENT_SLACK_TIMESTAMP_STALE',
    'The Slack request timestamp is missing or more than 5 minutes from now',
    401,
  ),
  SLACK_REPLAY: createError('REGENT_SLACK_REPLAY', 'This Slack request was already received', 401),
} as const
