import createError from '@fastify/error'

/** The database's part of the error catalogue (spread into `errors` in src/errors.ts). */
export const dbErrors = {
  DATABASE_UNAVAILABLE: createError(
    'REGENT_DATABASE_UNAVAILABLE',
    'The database is %s; try again shortly',
    503,
  ),
} as const

/** SQLSTATE classes and codes that mean the server, not the statement, is the problem. */
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300'])
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN'])

/**
 * The catalogued 503 for an error that says the database could not be reached or had no free
 * connection (every connection of the pool busy past `database.connectionTimeoutMs`, the server
 * restarting, a dropped connection), so callers get a retryable answer instead of a 500; undefined
 * for anything else, catalogued errors included. The operation did not complete; a transaction it
 * had open was rolled back.
 */
export function databaseUnavailable(
  err: unknown,
): InstanceType<typeof dbErrors.DATABASE_UNAVAILABLE> | undefined {
  if (!(err instanceof Error)) return undefined
  const { code } = err as { code?: unknown }
  // A catalogued error already says what went wrong (its code is REGENT_…; the catalogue itself
  // cannot be imported here, it spreads this module's errors).
  if (typeof code === 'string' && code.startsWith('REGENT_')) return undefined
  const message = err.message
  // pg-pool's own wording when no connection freed up in time.
  if (message === 'timeout exceeded when trying to connect') return new dbErrors.DATABASE_UNAVAILABLE('busy')
  if (
    message.startsWith('Connection terminated') ||
    (typeof code === 'string' &&
      (code.startsWith('08') || CONNECTION_SQLSTATES.has(code) || SOCKET_CODES.has(code)))
  ) {
    return new dbErrors.DATABASE_UNAVAILABLE('unreachable')
  }
  return undefined
}
