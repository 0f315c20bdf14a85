import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { ChannelListener } from '../db/listen.js'
import { withTransaction } from '../db/transaction.js'
import { backoffDelay } from '../lib/backoff.js'
import type { JobsConfig } from './config-schema.js'
import {
  type JobContext,
  type JobHandler,
  LeaseLostError,
  NonRetryableJobError,
  WorkerStoppingError,
} from './handler.js'
import {
  claimJobs,
  completeJob,
  type FailResult,
  failExpiredJobs,
  failJob,
  heartbeat,
  releaseJobs,
  updateProgress,
} from './sql.js'
import { JOBS_CHANNEL, type Job, type JobLogger } from './types.js'

export interface WorkerOptions {
  pool: pg.Pool
  /** Unique per process; default `<hostname>-<pid>-<random>`. Stored in jobs.locked_by. */
  workerId?: string
  /** The kinds this worker runs, and how. It claims no other kind. */
  handlers: Record<string, JobHandler>
  config: JobsConfig
  log: JobLogger
  /**
   * Runs inside the transaction that marks a job `failed` for good, with that transaction's
   * client: write the feature's audit event here so both commit or neither does. If it throws, the
   * failure is not recorded and the worker tries again after a backoff.
   */
  onFailed?: (client: pg.PoolClient, job: Job) => Promise<void>
  /** Source of backoff jitter in [0, 1] (default Math.random); tests pin it. */
  random?: () => number
}

interface Running {
  job: Job
  controller: AbortController
  log: JobLogger
  /** The outcome must not be written: the lease was lost, or the job was released at shutdown. */
  abandoned: boolean
  /** The outcome is being written: a heartbeat may already find the job no longer ours. */
  writing: boolean
  /** The outcome is committed; the job is no longer ours. */
  written: boolean
  done: Promise<void>
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: unknown }

/** How long stop() gives aborted handlers to return before it stops waiting for them. */
const ABORT_SETTLE_MS = 1000
/** Jobs failed per sweep of expired last attempts. */
const SWEEP_LIMIT = 100

/**
 * Runs queued jobs: wakes on NOTIFY (one dedicated LISTEN connection), polls as a fallback,
 * claims up to its free slots, renews leases by heartbeat, retries with backoff and hands jobs
 * back on shutdown. No transaction is open while a handler runs: the claim commits first and every
 * later write is its own short statement or transaction.
 */
export class Worker {
  readonly workerId: string
  private readonly pool: pg.Pool
  private readonly handlers: Record<string, JobHandler>
  private readonly kinds: string[]
  private readonly config: JobsConfig
  private readonly log: JobLogger
  private readonly onFailed: WorkerOptions['onFailed']
  private readonly random: () => number

  private phase: 'new' | 'started' | 'stopping' | 'stopped' = 'new'
  private readonly running = new Map<string, Running>()
  private claiming: Promise<void> | undefined
  private wakeRequested = false
  private sweepDue = true
  private stopped: Promise<void> | undefined

  private readonly listener: ChannelListener
  /** Claims in a row that failed (the database is away): logged once, not at every poll. */
  private claimFailures = 0
  private pollTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private retryTimer: { at: number; timer: NodeJS.Timeout } | undefined

  constructor(options: WorkerOptions) {
    if (options.config.heartbeatMs >= options.config.leaseMs) {
      // A lease that can expire between two heartbeats would be taken over from a healthy worker.
      throw new Error(
        `jobs.heartbeatMs (${options.config.heartbeatMs}) must be below jobs.leaseMs (${options.config.leaseMs})`,
      )
    }
    this.pool = options.pool
    this.workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
    this.handlers = options.handlers
    this.kinds = Object.keys(options.handlers)
    this.config = options.config
    this.log = options.log.child({ workerId: this.workerId })
    this.onFailed = options.onFailed
    this.random = options.random ?? Math.random
    this.listener = new ChannelListener({
      connection: this.pool.options,
      channel: JOBS_CHANNEL,
      // An empty payload wakes every worker; a kind wakes only the workers that run it.
      onPayload: (kind) => {
        if (!kind || this.kinds.includes(kind)) this.wake()
      },
      // Anything enqueued while nobody listened notified no one.
      onListening: () => this.wake(),
      log: this.log,
      backoff: { baseMs: 250, maxMs: Math.max(1000, this.config.pollMs) },
      random: this.random,
    })
  }

  /** How many jobs this worker is running now. */
  get activeJobs(): number {
    return this.running.size
  }

  /**
   * Starts listening and claiming. Resolves once the first LISTEN attempt is done (if it failed,
   * polling still works and the listener reconnects in the background).
   */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error('a Worker can be started once')
    this.phase = 'started'
    await this.listener.start()
    this.scheduleHeartbeat()
    this.poll()
  }

  /**
   * Graceful shutdown (SIGTERM): claims nothing more, lets running handlers finish for up to
   * shutdownGraceMs, then aborts the rest and releases their jobs to the queue without consuming
   * an attempt, and closes the LISTEN connection. Safe to call more than once.
   */
  stop(): Promise<void> {
    if (this.phase === 'new') {
      this.phase = 'stopped'
      return Promise.resolve()
    }
    this.stopped ??= this.shutdown()
    return this.stopped
  }

  private async shutdown(): Promise<void> {
    this.phase = 'stopping'
    clearTimeout(this.pollTimer)
    if (this.retryTimer) clearTimeout(this.retryTimer.timer)
    // A claim already under way finishes (and releases what it got, see claimLoop).
    await this.claiming

    const active = () => [...this.running.values()]
    if (this.running.size > 0) {
      this.log.info(
        { jobs: this.running.size, graceMs: this.config.shutdownGraceMs },
        'waiting for running jobs',
      )
      let graceTimer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.allSettled(active().map((r) => r.done)),
        new Promise<void>((resolve) => {
          graceTimer = setTimeout(resolve, this.config.shutdownGraceMs)
        }),
      ])
      clearTimeout(graceTimer)
    }

    const left = active().filter((r) => !r.abandoned && !r.written)
    if (left.length > 0) {
      for (const entry of left) {
        entry.abandoned = true
        entry.controller.abort(new WorkerStoppingError())
      }
      try {
        const released = await releaseJobs(
          this.pool,
          this.workerId,
          left.map((r) => r.job.id),
        )
        this.log.warn({ released }, 'grace period over: aborted running jobs and released them to the queue')
      } catch (err) {
        // Their leases run out instead and another worker claims them then.
        this.log.error({ err }, 'releasing jobs at shutdown failed')
      }
      await Promise.race([Promise.allSettled(active().map((r) => r.done)), sleep(ABORT_SETTLE_MS)])
    }

    this.phase = 'stopped'
    clearTimeout(this.heartbeatTimer)
    await this.listener.stop()
  }

  // ---- waking and claiming --------------------------------------------------------------------

  private poll(): void {
    if (this.phase !== 'started') return
    // Due retries and expired leases produce no NOTIFY: the poll finds them.
    this.sweepDue = true
    this.wake()
    this.pollTimer = setTimeout(() => this.poll(), this.config.pollMs)
  }

  /** Claim as soon as possible; wakes arriving while a claim runs fold into one more round. */
  private wake(): void {
    if (this.phase !== 'started') return
    this.wakeRequested = true
    if (this.claiming) return
    this.claiming = this.claimLoop().finally(() => {
      this.claiming = undefined
      // A wake that landed between the loop's last check and here would be lost otherwise.
      if (this.wakeRequested) this.wake()
    })
  }

  /** A retry that this worker scheduled is due at `at`: wake then rather than at the next poll. */
  private wakeAt(at: Date): void {
    const when = at.getTime()
    if (this.phase !== 'started' || (this.retryTimer && this.retryTimer.at <= when)) return
    if (this.retryTimer) clearTimeout(this.retryTimer.timer)
    const timer = setTimeout(
      () => {
        this.retryTimer = undefined
        this.wake()
      },
      Math.max(0, when - Date.now()),
    )
    this.retryTimer = { at: when, timer }
  }

  private async claimLoop(): Promise<void> {
    while (this.wakeRequested && this.phase === 'started') {
      this.wakeRequested = false
      try {
        if (this.sweepDue) {
          this.sweepDue = false
          await this.failExpiredLastAttempts()
        }
        const free = this.config.concurrency - this.running.size
        if (free <= 0) continue // a finishing job wakes us again
        const jobs = await claimJobs(this.pool, {
          workerId: this.workerId,
          kinds: this.kinds,
          limit: free,
          leaseMs: this.config.leaseMs,
          registryConcurrency: this.config.registryConcurrency,
        })
        if (this.phase !== 'started') {
          // stop() began while this claim ran: hand the jobs straight back.
          await releaseJobs(
            this.pool,
            this.workerId,
            jobs.map((j) => j.id),
          )
          return
        }
        if (this.claimFailures > 0) {
          this.log.info({ failedClaims: this.claimFailures }, 'database reachable again: claiming jobs')
          this.claimFailures = 0
        }
        for (const job of jobs) this.run(job)
        // A full batch may mean more are due; a registry cap may have held some back for others.
        if (jobs.length > 0) this.wakeRequested = true
      } catch (err) {
        // While the database is away nothing is claimed; each poll tries again, quietly after the
        // first failure, and jobs resume when it is back.
        if (this.claimFailures++ === 0)
          this.log.error(
            { err },
            'claiming jobs failed; trying again at every poll until the database answers',
          )
        return
      }
    }
  }

  /**
   * A worker that died during a job's last attempt leaves it `running` with an expired lease, and
   * reclaiming it would exceed max_attempts: fail it here, with onFailed in the same transaction.
   */
  private async failExpiredLastAttempts(): Promise<void> {
    try {
      await withTransaction(this.pool, async (client) => {
        const failed = await failExpiredJobs(client, { kinds: this.kinds, limit: SWEEP_LIMIT })
        for (const job of failed) {
          if (this.onFailed) await this.onFailed(client, job)
          this.jobLog(job).error(
            { lastError: job.lastError },
            'job failed for good: its last attempt was abandoned',
          )
        }
      })
    } catch (err) {
      this.log.error({ err }, 'failing abandoned last attempts failed; the next poll tries again')
    }
  }

  // ---- running a job ----------------------------------------------------------------------------

  private jobLog(job: Job): JobLogger {
    return this.log.child({ jobId: job.id, kind: job.kind, registry: job.registry, attempt: job.attempts })
  }

  private run(job: Job): void {
    // Our own job whose lease ran out while the database was unreachable (no heartbeat got
    // through) comes back to us from the claim: its handler is still running here, and the claim
    // has renewed the lease it keeps heartbeating. A second handler would run it twice.
    if (this.running.has(job.id)) {
      this.jobLog(job).warn(
        {},
        'reclaimed a job still running here after its lease expired: letting it finish',
      )
      return
    }
    const entry: Running = {
      job,
      controller: new AbortController(),
      log: this.jobLog(job),
      abandoned: false,
      writing: false,
      written: false,
      done: Promise.resolve(),
    }
    this.running.set(job.id, entry)
    entry.done = this.execute(entry)
      .catch((err: unknown) => entry.log.error({ err }, 'job runtime error'))
      .finally(() => {
        this.running.delete(job.id)
        this.wake()
      })
  }

  private async execute(entry: Running): Promise<void> {
    const { job, log } = entry
    const handler = this.handlers[job.kind]
    log.debug({}, 'job started')
    const ctx: JobContext = {
      signal: entry.controller.signal,
      attempt: job.attempts,
      log,
      progress: async (progress) => {
        if (entry.abandoned) return
        if (!(await updateProgress(this.pool, job.id, this.workerId, progress))) this.loseLease(entry)
      },
    }

    let outcome: Outcome
    try {
      if (!handler) throw new NonRetryableJobError(`no handler for job kind ${job.kind}`)
      outcome = { ok: true, result: await handler(job, ctx) }
    } catch (error) {
      outcome = { ok: false, error }
    }

    if (entry.abandoned) {
      log.info({ reason: reasonOf(entry) }, 'job outcome not written: the job is no longer ours')
      return
    }
    if (outcome.ok) await this.persist(entry, () => this.complete(entry, outcome.result))
    else await this.persist(entry, () => this.fail(entry, outcome.error))
  }

  private async complete(entry: Running, result: unknown): Promise<void> {
    const done = await completeJob(this.pool, entry.job.id, this.workerId, result)
    entry.written = true
    if (done) entry.log.info({}, 'job succeeded')
    else entry.log.warn({}, 'job finished but its lease was lost: outcome not written')
  }

  private async fail(entry: Running, error: unknown): Promise<void> {
    const { job, log } = entry
    const retryable = !(isRecord(error) && error.retryable === false)
    const retryAfterMs = isRecord(error) && typeof error.retryAfterMs === 'number' ? error.retryAfterMs : 0
    const backoffMs = Math.max(
      retryAfterMs,
      backoffDelay(
        job.attempts,
        { baseMs: this.config.backoffBaseMs, maxMs: this.config.backoffMaxMs },
        this.random,
      ),
    )
    const result: FailResult | undefined = await withTransaction(this.pool, async (client) => {
      const failed = await failJob(client, job.id, this.workerId, {
        error: errorMessage(error),
        retryable,
        backoffMs,
      })
      // The feature's audit event commits with the final failure, or neither does.
      if (failed?.outcome === 'failed' && this.onFailed) await this.onFailed(client, failed.job)
      return failed
    })
    entry.written = true
    if (!result) {
      log.warn({ err: error }, 'job failed but its lease was lost: outcome not written')
    } else if (result.outcome === 'retry') {
      log.warn(
        { err: error, retryInMs: backoffMs, maxAttempts: job.maxAttempts },
        'job attempt failed; will retry',
      )
      this.wakeAt(result.job.runAt)
    } else {
      log.error({ err: error, retryable, maxAttempts: job.maxAttempts }, 'job failed for good')
    }
  }

  /**
   * Writes the outcome, retrying with backoff when the database (or onFailed) fails, for as long as
   * the job is ours: the entry stays in `running`, so heartbeats keep the lease meanwhile. It ends
   * when written, or when the lease is lost or the job released at shutdown (the signal aborts).
   */
  private async persist(entry: Running, write: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !entry.abandoned; attempt++) {
      entry.writing = true
      try {
        await write()
        return
      } catch (err) {
        entry.writing = false
        const delay = backoffDelay(
          attempt,
          { baseMs: this.config.backoffBaseMs, maxMs: this.config.backoffMaxMs },
          this.random,
        )
        entry.log.error({ err, retryInMs: delay }, 'recording the job outcome failed; trying again')
        await sleep(delay, undefined, { signal: entry.controller.signal }).catch(() => {})
      }
    }
  }

  private loseLease(entry: Running): void {
    if (entry.abandoned || entry.written) return
    entry.abandoned = true
    entry.log.warn({}, 'lease lost (taken over after it expired): aborting the handler')
    entry.controller.abort(new LeaseLostError(entry.job.id))
  }

  // ---- heartbeats -------------------------------------------------------------------------------

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = setTimeout(() => {
      this.beat().finally(() => {
        if (this.phase === 'started' || this.phase === 'stopping') this.scheduleHeartbeat()
      })
    }, this.config.heartbeatMs)
  }

  private async beat(): Promise<void> {
    const entries = [...this.running.values()].filter((r) => !r.abandoned && !r.written)
    if (entries.length === 0) return
    try {
      const held = new Set(
        await heartbeat(
          this.pool,
          this.workerId,
          entries.map((r) => r.job.id),
          this.config.leaseMs,
        ),
      )
      for (const entry of entries) {
        // A job whose outcome is being written is ours until that write says otherwise.
        if (!held.has(entry.job.id) && !entry.writing) this.loseLease(entry)
      }
    } catch (err) {
      // Not a lost lease: the database is unreachable. The next beat tells.
      this.log.warn({ err }, 'heartbeat failed')
    }
  }
}

function reasonOf(entry: Running): string {
  const reason: unknown = entry.controller.signal.reason
  return reason instanceof Error ? reason.name : 'aborted'
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = isRecord(error) && typeof error.code === 'string' ? `${error.code}: ` : ''
    return `${code}${error.message || error.name}`
  }
  return String(error)
}
