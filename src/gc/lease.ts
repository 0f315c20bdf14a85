import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { withTransaction } from '../db/transaction.js'
import type { Job, JobLogger } from '../jobs/index.js'
import { deferJob } from './queue.js'
import { acquireRun, type GcRunRow, getRun, releaseRunLease, renewRunLease } from './sql.js'

/** The run's lease was lost (another replica took the run over): stop at once, touch nothing. */
export class Fenced extends Error {
  constructor(reason: string) {
    super(`the GC run's lease was lost: ${reason}`)
    this.name = 'Fenced'
  }
}

/** The run's own lease (see migration 007) and how often it is renewed. */
export interface LeaseTiming {
  leaseMs: number
  renewMs: number
}

/**
 * Takes the run's lease for this job, writing `started` (the run's audit event) in the same
 * transaction. A run that is not this job's to run any more is skipped; a run still leased by a
 * worker that lost this job's lease but may yet be running the command is waited for: the job
 * comes back when that lease runs out, without spending an attempt.
 */
export async function takeRunLease(
  pool: pg.Pool,
  run: GcRunRow,
  job: Job,
  leaseMs: number,
  started: (client: pg.PoolClient, row: GcRunRow) => Promise<void>,
): Promise<{ row: GcRunRow; owner: string } | { skipped: string }> {
  const owner = randomUUID()
  const acquired = await withTransaction(pool, async (client) => {
    const row = await acquireRun(client, run.id, job.id, owner, leaseMs)
    if (row) await started(client, row)
    return row
  })
  if (acquired) return { row: acquired, owner }
  const current = await getRun(pool, run.id)
  if (current?.state === 'running' && current.job_id === job.id && current.lease_until) {
    // The lease ends by the database's clock; real time measures how long that is from here.
    const left = current.lease_until.getTime() - Date.now()
    throw await deferJob(pool, job, 'waiting for the previous holder of the GC run to let go', left + 100)
  }
  return { skipped: current?.state ?? 'gone' }
}

/**
 * A GC run's hold on its row while the protocol runs. No transaction stays open while a command or
 * the registry runs: the row carries a lease, renewed every renewMs. A worker that finds the lease
 * taken, or cannot renew it in time, fences itself: it stops its commands at once, because past the
 * lease another replica may start the same run, and leaves `after` to whoever takes the run over.
 * Leases are timed in real time whatever clock the run reads, as their expiry is the database's.
 */
export class RunLease {
  /** Aborted by the job's signal (shutdown, job lease lost) or by fencing. */
  readonly #stop = new AbortController()
  /** Aborted only by fencing: `after` must still run on a shutdown. */
  readonly #fence = new AbortController()

  constructor(
    private readonly pool: pg.Pool,
    readonly runId: string,
    readonly owner: string,
    private readonly timing: LeaseTiming,
    private readonly log: JobLogger,
  ) {}

  /** Aborted when the job stops (shutdown, job lease lost) or the run is fenced. */
  get signal(): AbortSignal {
    return this.#stop.signal
  }

  /** Aborted only when the run is fenced: what must still run on a shutdown listens to this one. */
  get fenceSignal(): AbortSignal {
    return this.#fence.signal
  }

  get fenced(): boolean {
    return this.#fence.signal.aborted
  }

  /** Runs `work` while following the job's signal and renewing the lease. */
  async holding<T>(jobSignal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const onAbort = () => this.#stop.abort(jobSignal.reason)
    if (jobSignal.aborted) onAbort()
    else jobSignal.addEventListener('abort', onAbort, { once: true })
    const renewal = this.renew()
    try {
      return await work()
    } finally {
      clearInterval(renewal)
      jobSignal.removeEventListener('abort', onAbort)
    }
  }

  /** The lease is gone: stop every command of the run now, `after` included. */
  lose(reason: string): void {
    if (this.fenced) return
    this.log.error({ runId: this.runId, reason }, 'GC run fenced: stopping its commands')
    const error = new Fenced(reason)
    this.#fence.abort(error)
    this.#stop.abort(error)
  }

  /** Lets the lease go at once (shutdown), so the next attempt need not wait it out. */
  async release(): Promise<void> {
    await releaseRunLease(this.pool, this.runId, this.owner).catch(() => {})
  }

  private renew(): NodeJS.Timeout {
    const { leaseMs, renewMs } = this.timing
    let renewedAt = Date.now()
    let busy = false
    const timer = setInterval(() => {
      if (busy) return
      busy = true
      const started = Date.now()
      renewRunLease(this.pool, this.runId, this.owner, leaseMs)
        .then((ours) => {
          if (ours) renewedAt = started
          else this.lose('another worker took the run over')
        })
        .catch((err: unknown) => {
          this.log.warn({ err }, 'renewing the GC run lease failed')
          // Self-fencing: past our lease another replica may start the same run; our command
          // must not be running then.
          if (Date.now() - renewedAt > leaseMs - renewMs) {
            this.lose('the lease could not be renewed in time')
          }
        })
        .finally(() => {
          busy = false
        })
    }, renewMs)
    timer.unref()
    return timer
  }
}
