export {
  type NotificationsConfig,
  NotificationsConfigSchema,
  type WebhookConfig,
  WebhookConfigSchema,
} from './config-schema.js'
export { type DeliveryDeps, DeliveryPayloadSchema, deliveryJob } from './deliver.js'
export { notificationErrors } from './errors.js'
export {
  eventMatches,
  NOTIFICATION_TYPES,
  type NotificationEvent,
  type NotificationType,
  webhookProblems,
  webhookWants,
} from './events.js'
export { CLOUDEVENTS_TYPE_PREFIX, renderDelivery, signatureHeader } from './formats.js'
export { notificationsGraphql } from './graphql.js'
export { DELIVER_NOTIFICATION, jsonObject, Notifier, notify } from './notify.js'
export { notificationRoutes } from './routes.js'
export { DeliverySchema, type DeliveryView } from './schemas.js'
export { NotificationService, toDeliveryView } from './service.js'
export { DELIVERY_STATES, type DeliveryRow, type DeliveryState, purgeDeliveries } from './sql.js'
