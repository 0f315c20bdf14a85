import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { type AuditInput, appendAuditEvent, auditActor, auditAlone } from '../audit/index.js'
import { isAdmin, type Principal, type RequestContext } from '../auth/principal.js'
import { withTransaction } from '../db/transaction.js'
import { errors } from '../errors.js'
import { enqueueJob } from '../jobs/index.js'
import { decodeKeyset, keysetPage } from '../lib/paging.js'
import type { NotificationsConfig } from './config-schema.js'
import { DELIVER_NOTIFICATION } from './notify.js'
import type { DeliveryView } from './schemas.js'
import { type DeliveryFilters, type DeliveryRow, getDelivery, listDeliveries, reopenDelivery } from './sql.js'

/**
 * Webhook deliveries as a service (REST and GraphQL share it): admins list them, look at one, and
 * send a failed one again. Deliveries can name any team's repositories, so only admins see them.
 */
export class NotificationService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly config: NotificationsConfig,
  ) {}

  async list(
    principal: Principal,
    filters: DeliveryFilters,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: DeliveryView[]; nextCursor: string | null }> {
    requireAdmin(principal)
    const after = decodeKeyset(page.cursor)
    const rows = await listDeliveries(this.pool, filters, {
      limit: page.limit + 1,
      ...(after ? { after } : {}),
    })
    const shown = keysetPage(rows, page.limit)
    return { items: shown.rows.map(toDeliveryView), nextCursor: shown.nextCursor }
  }

  async get(principal: Principal, id: string): Promise<DeliveryView> {
    requireAdmin(principal)
    const row = UUID.test(id) ? await getDelivery(this.pool, id) : undefined
    if (!row) throw new errors.DELIVERY_NOT_FOUND(id)
    return toDeliveryView(row)
  }

  /**
   * Sends a failed delivery again: a new job with the full attempt budget, the same body (same
   * delivery id, so a receiver that deduplicates on it still can), audited with who asked.
   */
  async redeliver(principal: Principal, context: RequestContext, id: string): Promise<DeliveryView> {
    if (!isAdmin(principal)) {
      await this.audit(principal, context, {
        action: 'notification.redeliver_refused',
        outcome: 'refused',
        details: { deliveryId: id },
      })
      throw new errors.FORBIDDEN('only admins may redeliver notifications')
    }
    const row = await withTransaction(this.pool, async (client) => {
      const current = UUID.test(id) ? await getDelivery(client, id, { forUpdate: true }) : undefined
      if (!current) throw new errors.DELIVERY_NOT_FOUND(id)
      if (current.state !== 'failed')
        throw new errors.DELIVERY_NOT_REDELIVERABLE(id, `it is ${current.state}, only a failed one can be`)
      if (!this.config.webhooks.some((w) => w.name === current.webhook))
        throw new errors.DELIVERY_NOT_REDELIVERABLE(id, `webhook ${current.webhook} is no longer configured`)
      const { job } = await enqueueJob(client, {
        kind: DELIVER_NOTIFICATION,
        payload: { deliveryId: current.id },
        uniqueKey: `notification:${current.id}:${randomUUID()}`,
        maxAttempts: this.config.maxAttempts,
      })
      await reopenDelivery(client, current.id, job.id)
      await appendAuditEvent(client, {
        ...auditActor(principal, context),
        action: 'notification.redelivered',
        outcome: 'queued',
        registry: current.registry,
        details: {
          deliveryId: current.id,
          webhook: current.webhook,
          eventType: current.event_type,
          subject: current.subject,
          jobId: job.id,
          previousAttempts: current.attempts,
          lastStatus: current.last_status,
        },
      })
      return (await getDelivery(client, current.id))!
    })
    return toDeliveryView(row)
  }

  private async audit(
    principal: Principal,
    context: RequestContext,
    event: Omit<AuditInput, keyof ReturnType<typeof auditActor>>,
  ) {
    await auditAlone(this.pool, auditActor(principal, context), event)
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function requireAdmin(principal: Principal): void {
  if (!isAdmin(principal)) throw new errors.FORBIDDEN('notification deliveries are for admins')
}

export function toDeliveryView(row: DeliveryRow): DeliveryView {
  return {
    id: row.id,
    webhook: row.webhook,
    type: row.event_type,
    subject: row.subject,
    registry: row.registry,
    teams: row.teams,
    summary: row.summary,
    state: row.state,
    attempts: row.attempts,
    lastStatus: row.last_status,
    lastError: row.last_error,
    jobId: row.job_id,
    data: (row.payload.data ?? {}) as Record<string, unknown>,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    deliveredAt: row.delivered_at?.toISOString() ?? null,
    failedAt: row.failed_at?.toISOString() ?? null,
  }
}
