import type { JsonObject } from '../audit/types.js'
import type { WebhookConfig } from './config-schema.js'

/** Every event a webhook can subscribe to (`events: [...]`, `*` or a prefix glob like `deletion.*`). */
export const NOTIFICATION_TYPES = [
  'deletion.requested',
  'deletion.approved',
  'deletion.rejected',
  'deletion.executed',
  'deletion.partially_failed',
  'deletion.failed',
  'deletion.restored',
  'gc.finished',
  'gc.failed',
  'policy.proposed',
  'policy.warning',
] as const

export type NotificationType = (typeof NOTIFICATION_TYPES)[number]

export interface NotificationEvent {
  type: NotificationType
  /** What it is about: a deletion id, a GC run id, a policy id. */
  subject: string
  registry?: string
  /** The teams owning the repositories concerned (webhooks with `teams` filter on them). */
  teams?: string[]
  /** One line for humans (chat messages show it as it is). */
  summary: string
  data: JsonObject
}

/** Whether a subscription pattern (`*`, `deletion.*`, `gc.failed`) covers an event type. */
export function eventMatches(pattern: string, type: string): boolean {
  if (pattern === '*') return true
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1))
  return pattern === type
}

/**
 * Whether a webhook wants an event: its type is subscribed, and the event passes the team and
 * registry filters. An event naming no team (a GC run) is not about any team's repositories, so a
 * webhook filtered by teams does not get it; likewise an event without a registry and `registries`.
 */
export function webhookWants(webhook: WebhookConfig, event: NotificationEvent): boolean {
  if (!webhook.events.some((pattern) => eventMatches(pattern, event.type))) return false
  if (webhook.teams && !(event.teams ?? []).some((team) => webhook.teams!.includes(team))) return false
  if (webhook.registries && (!event.registry || !webhook.registries.includes(event.registry))) return false
  return true
}

/**
 * Checks what the schema cannot: names unique, a secret for the signed formats and present in the
 * environment, event patterns naming known types. Returns one line per problem.
 */
export function webhookProblems(
  webhooks: WebhookConfig[],
  env: Record<string, string | undefined>,
): string[] {
  const problems: string[] = []
  const seen = new Set<string>()
  webhooks.forEach((webhook, i) => {
    const key = `notifications.webhooks[${i}]`
    if (seen.has(webhook.name)) problems.push(`${key}.name: ${webhook.name} is used twice`)
    seen.add(webhook.name)
    if (webhook.format !== 'slack' && !webhook.secretEnv)
      problems.push(`${key}.secretEnv: required for the ${webhook.format} format (deliveries are signed)`)
    if (webhook.secretEnv && !env[webhook.secretEnv])
      problems.push(`${key}.secretEnv: the environment variable ${webhook.secretEnv} is not set`)
    for (const pattern of webhook.events) {
      const known = pattern === '*' || NOTIFICATION_TYPES.some((type) => eventMatches(pattern, type))
      if (!known) problems.push(`${key}.events: ${pattern} matches no event type`)
    }
  })
  return problems
}
