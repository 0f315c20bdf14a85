import { createHmac, timingSafeEqual } from 'node:crypto'

/** Slack refuses to sign for longer; so do we (https://api.slack.com/authentication/verifying-requests-from-slack). */
export const SLACK_TIMESTAMP_TOLERANCE_SEC = 5 * 60

export type SignatureVerdict = { ok: true } | { ok: false; reason: 'stale-timestamp' | 'bad-signature' }

/** `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the signing secret, as Slack signs. */
export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`
}

/**
 * Checks the timestamp first (a stale request is refused whatever it carries), then the signature
 * in constant time, so the comparison reveals nothing about how much of a forged one matched.
 */
export function verifySlackSignature(
  secret: string,
  timestamp: string | undefined,
  signature: string | undefined,
  rawBody: string,
  nowMs: number = Date.now(),
): SignatureVerdict {
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'stale-timestamp' }
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > SLACK_TIMESTAMP_TOLERANCE_SEC)
    return { ok: false, reason: 'stale-timestamp' }
  if (!signature) return { ok: false, reason: 'bad-signature' }
  const expected = Buffer.from(slackSignature(secret, timestamp, rawBody))
  const given = Buffer.from(signature)
  // timingSafeEqual needs equal lengths; a length mismatch is a mismatch and leaks only the length.
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad-signature' }
  return { ok: true }
}
