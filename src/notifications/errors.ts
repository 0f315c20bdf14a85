import createError from '@fastify/error'

/** Notifications' part of the error catalogue (spread into `errors` in src/errors.ts). */
export const notificationErrors = {
  DELIVERY_NOT_FOUND: createError('REGENT_DELIVERY_NOT_FOUND', 'Notification delivery %s not found', 404),
  DELIVERY_NOT_REDELIVERABLE: createError(
    'REGENT_DELIVERY_NOT_REDELIVERABLE',
    'Notification delivery %s cannot be redelivered: %s',
    409,
  ),
} as const
