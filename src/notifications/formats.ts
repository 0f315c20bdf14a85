import { createHmac } from 'node:crypto'
import type { JsonObject } from '../audit/types.js'
import type { WebhookConfig } from './config-schema.js'
import type { DeliveryRow } from './sql.js'

/** The request a delivery sends: the same bytes on every attempt (only the signature's time moves). */
export interface RenderedDelivery {
  contentType: string
  body: string
}

/** CloudEvents `type` attributes are reverse-DNS prefixed: `io.regent.deletion.approved`. */
export const CLOUDEVENTS_TYPE_PREFIX = 'io.regent.'

export function renderDelivery(
  row: DeliveryRow,
  format: WebhookConfig['format'],
  options: { source: string },
): RenderedDelivery {
  const time = row.created_at.toISOString()
  const data = (row.payload.data ?? {}) as JsonObject
  switch (format) {
    case 'json':
      return {
        contentType: 'application/json',
        body: JSON.stringify({
          id: row.id,
          type: row.event_type,
          time,
          subject: row.subject,
          registry: row.registry,
          teams: row.teams,
          summary: row.summary,
          data,
        }),
      }
    case 'cloudevents':
      // Structured mode (CloudEvents JSON format §3): attributes and data in one JSON document.
      return {
        contentType: 'application/cloudevents+json',
        body: JSON.stringify({
          specversion: '1.0',
          id: row.id,
          source: options.source,
          type: `${CLOUDEVENTS_TYPE_PREFIX}${row.event_type}`,
          time,
          subject: row.subject,
          datacontenttype: 'application/json',
          data: { ...data, summary: row.summary, registry: row.registry, teams: row.teams },
        }),
      }
    case 'slack':
      return { contentType: 'application/json', body: JSON.stringify(slackMessage(row)) }
  }
}

/** A Slack incoming-webhook message: the summary, and what it is about in small print. */
function slackMessage(row: DeliveryRow) {
  const about = [
    `*${row.event_type}*`,
    row.registry ? `registry \`${escapeSlack(row.registry)}\`` : undefined,
    `\`${escapeSlack(row.subject)}\``,
    row.teams.length > 0 ? `teams ${row.teams.map(escapeSlack).join(', ')}` : undefined,
  ].filter(Boolean)
  return {
    text: row.summary,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: escapeSlack(row.summary) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: about.join(' · ') }] },
    ],
  }
}

/** Slack reads `&`, `<` and `>` as control characters in mrkdwn. */
function escapeSlack(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

/**
 * `x-regent-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (the Stripe
 * scheme): the timestamp is signed with the body, so a receiver refusing old timestamps refuses
 * replays, and the raw body is what is signed, so no JSON re-serialisation can break the check.
 */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')
  return `t=${unixSeconds},v1=${mac}`
}
