import type { MercuriusContext } from 'mercurius'
import { type GraphqlModule, pageOf } from '../graphql/plugin.js'
import type { NotificationService } from './service.js'
import type { DeliveryFilters, DeliveryState } from './sql.js'

/** Webhook deliveries as a graph: the same service as REST, so the same admin check and codes. */
const typeDefs = /* GraphQL */ `
  extend type Query {
    "Webhook deliveries, newest first (admins)."
    notificationDeliveries(
      webhook: String
      state: String
      type: String
      subject: String
      first: Int = 50
      after: String
    ): NotificationDeliveryConnection!
    notificationDelivery(id: ID!): NotificationDelivery!
  }
  type NotificationDelivery {
    id: ID!
    webhook: String!
    type: String!
    subject: String!
    registry: String
    teams: [String!]!
    summary: String!
    "pending, delivered or failed"
    state: String!
    attempts: Int!
    lastStatus: Int
    lastError: String
    jobId: ID
    "The event's data as JSON text"
    data: String!
    createdAt: String!
    updatedAt: String!
    deliveredAt: String
    failedAt: String
  }
  type NotificationDeliveryConnection {
    nodes: [NotificationDelivery!]!
    pageInfo: PageInfo!
  }
`

export function notificationsGraphql(service: () => NotificationService): GraphqlModule {
  return {
    typeDefs,
    resolvers: {
      Query: {
        notificationDeliveries: async (
          _root: unknown,
          args: {
            webhook?: string
            state?: string
            type?: string
            subject?: string
            first: number
            after?: string
          },
          ctx: MercuriusContext,
        ) => {
          const filters: DeliveryFilters = {
            ...(args.webhook ? { webhook: args.webhook } : {}),
            ...(args.state ? { state: args.state as DeliveryState } : {}),
            ...(args.type ? { type: args.type } : {}),
            ...(args.subject ? { subject: args.subject } : {}),
          }
          const result = await service().list(ctx.principal, filters, {
            limit: Math.max(1, Math.min(200, args.first)),
            ...(args.after ? { cursor: args.after } : {}),
          })
          return pageOf(result.items, result.nextCursor)
        },
        notificationDelivery: (_root: unknown, args: { id: string }, ctx: MercuriusContext) =>
          service().get(ctx.principal, args.id),
      },
      NotificationDelivery: {
        data: (delivery: { data: unknown }) => JSON.stringify(delivery.data),
      },
    },
  }
}
