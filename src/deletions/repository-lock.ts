import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { Semaphore } from '../lib/semaphore.js'

/**
 * One writer per repository. distribution deletes a manifest and then walks every tag of the
 * repository to untag the ones pointing at it; a second DELETE (or a placeholder push) in the same
 * repository at that moment makes the walk fail half-way: the registry answers 500 with the
 * manifest gone and its tags left behind, listed but resolving to nothing. So every manifest write
 * and delete Regent sends to one repository (placeholder pushes, DELETEs, restores) happens while
 * holding a Postgres advisory lock on (registry, repository), across workers and replicas;
 * different repositories run in parallel.
 *
 * The lock is a session lock on a connection of its own, held while no transaction is open (the
 * registry calls happen in between). The short transactions of the holder run on that same
 * connection, so a holder never needs a second one to write with (how many sessions one process
 * holds at once is bounded below). If the connection drops, Postgres releases the lock at once:
 * the holder notices through `assertHeld` before its next registry write and stops, so two
 * writers never overlap for longer than the one call already in flight.
 */
export interface RepositorySession {
  /** Throws once the connection holding the lock is gone. Call before every registry write. */
  assertHeld(): void
  /** BEGIN … COMMIT on the lock's own connection (no registry call inside). */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>
}

export class RepositoryLockLostError extends Error {
  constructor(registry: string, repository: string, cause: unknown) {
    super(`lost the database connection holding the write lock on ${registry}/${repository}`, { cause })
    this.name = 'RepositoryLockLostError'
  }
}

/** First and longest pause between attempts to take a lock another writer holds. */
const RETRY_MIN_MS = 25
const RETRY_MAX_MS = 500

/**
 * Lock sessions one process holds at once, per pool: all its connections but a quarter of them (at
 * least two), which stay for everything else (8 of the default 10). Each session keeps a
 * connection for as long as it writes to its repository; with one per repository of every running
 * request, a few wide requests would otherwise take every connection, and API calls, the queue's
 * heartbeats and the sessions' neighbours would time out waiting for one. A writer past the bound
 * waits here, without a timeout and abortably, instead of in the pool.
 */
const sessionSlots = new WeakMap<pg.Pool, Semaphore>()

function sessionSlotsOf(pool: pg.Pool): Semaphore {
  let slots = sessionSlots.get(pool)
  if (!slots) {
    const size = pool.options.max ?? 10
    slots = new Semaphore(Math.max(1, size - Math.max(2, Math.ceil(size / 4))))
    sessionSlots.set(pool, slots)
  }
  return slots
}

export async function withRepositoryLock<T>(
  pool: pg.Pool,
  registry: string,
  repository: string,
  signal: AbortSignal | undefined,
  work: (session: RepositorySession) => Promise<T>,
): Promise<T> {
  const releaseSlot = await sessionSlotsOf(pool).acquire(signal)
  try {
    return await lockedSession(pool, registry, repository, signal, work)
  } finally {
    releaseSlot()
  }
}

async function lockedSession<T>(
  pool: pg.Pool,
  registry: string,
  repository: string,
  signal: AbortSignal | undefined,
  work: (session: RepositorySession) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  let lost: unknown
  const onError = (err: unknown) => {
    lost ??= err
  }
  client.on('error', onError)
  let held = false
  try {
    for (let pause = RETRY_MIN_MS; ; pause = Math.min(RETRY_MAX_MS, pause * 2)) {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked',
        [registry, repository],
      )
      if (rows[0]?.locked) break
      signal?.throwIfAborted()
      await sleep(pause * (0.5 + Math.random() / 2), undefined, signal ? { signal } : {})
    }
    held = true
    const session: RepositorySession = {
      assertHeld() {
        if (lost !== undefined) throw new RepositoryLockLostError(registry, repository, lost)
      },
      async transaction(run) {
        session.assertHeld()
        await client.query('BEGIN')
        try {
          const result = await run(client)
          await client.query('COMMIT')
          return result
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {})
          throw err
        }
      },
    }
    return await work(session)
  } finally {
    client.off('error', onError)
    if (lost === undefined && held) {
      await client
        .query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', [registry, repository])
        .then(() => client.release())
        .catch((err: Error) => client.release(err))
    } else {
      // A broken connection is destroyed, not returned; Postgres has released its locks already.
      client.release(lost === undefined ? undefined : (lost as Error))
    }
  }
}
