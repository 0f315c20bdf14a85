import type pg from 'pg'
import type { AuditEvent, AuditInput } from '../../src/audit/index.js'
import { appendAuditEvent } from '../../src/audit/index.js'
import { withTransaction } from '../../src/db/transaction.js'
import { createTestDatabase, type TestContext, testPool } from '../helper.js'

/** A pool on a fresh clone of the migrated template, closed at teardown. */
export async function auditDatabase(t: TestContext, max = 5): Promise<{ pool: pg.Pool; url: string }> {
  const url = await createTestDatabase(t)
  return { pool: testPool(t, url, { max }), url }
}

export function sampleInput(overrides: Partial<AuditInput> = {}): AuditInput {
  return {
    action: 'deletion.requested',
    outcome: 'succeeded',
    actorSubject: 'ann',
    onBehalfOf: null,
    actorTeams: ['payments'],
    channel: 'api',
    sourceIp: '192.0.2.10',
    userAgent: 'curl/8.5',
    requestId: 'req-1',
    registry: 'main',
    repository: 'payments/api',
    tag: 'v1.2.3',
    digest: `sha256:${'a'.repeat(64)}`,
    ...overrides,
  }
}

/** Appends events one transaction each, in order. */
export async function appendEvents(pool: pg.Pool, inputs: AuditInput[]): Promise<AuditEvent[]> {
  const events: AuditEvent[] = []
  for (const input of inputs)
    events.push(await withTransaction(pool, (client) => appendAuditEvent(client, input)))
  return events
}

/**
 * Runs SQL as the superuser with triggers off (`session_replication_role = replica` skips user
 * triggers in this session only): how an attacker with full database access would tamper.
 */
export async function tamper(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('SET session_replication_role = replica')
    await client.query(sql, params)
  } finally {
    await client.query('RESET session_replication_role').catch(() => {})
    client.release()
  }
}
