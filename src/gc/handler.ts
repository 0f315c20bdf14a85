import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { Type } from 'typebox'
import { appendAuditEvent } from '../audit/index.js'
import { withTransaction } from '../db/transaction.js'
import { closeRestoreWindow, EXECUTE_DELETION, newestRestorableDeletion } from '../deletions/index.js'
import {
  type Job,
  type JobContext,
  type JobKind,
  NonRetryableJobError,
  runningJobsOf,
} from '../jobs/index.js'
import { secretEnv } from '../lib/secrets.js'
import { systemActor, workerActor } from '../lib/system.js'
import { jsonObject, type Notifier } from '../notifications/index.js'
import type { RegistryClient } from '../oci/index.js'
import type { ConfiguredRegistry, RegistrySet } from '../registries/registry-set.js'
import { childEnv, commandFailure, runCommand } from './command.js'
import { type GcConfig, hookCommand } from './config-schema.js'
import { runExecutor } from './executors.js'
import { eligibleShare, type GcReport } from './output.js'
import { deferJob, enqueueRun, GC_RUN } from './queue.js'
import { toRunView } from './service.js'
import {
  acquireRun,
  finishRun,
  freed,
  type GcRunRow,
  type GcStep,
  getRun,
  insertRun,
  markGcStarted,
  pushBackRun,
  type RunNumbers,
  recordProgress,
  releaseRunLease,
  renewRunLease,
} from './sql.js'
import { blobBytes, storageBytes } from './storage.js'
import { verifyRegistry, waitUntilServing } from './verify.js'

export interface GcHandlerDeps {
  pool: pg.Pool
  registries: RegistrySet
  /**
   * Regent's environment (default process.env, like the registry client's credentials): commands
   * get PATH and HOME from it, the http executor its password.
   */
  env?: Record<string, string | undefined>
  /** The run's own lease (see migration 007) and how often it is renewed. */
  leaseMs: number
  renewMs: number
  /** How often the `wait-deletions` step looks at the deletion jobs still running. */
  pollMs: number
  /** Tells listeners (GraphQL subscriptions, other replicas) a run changed. */
  notify?: (runId: string) => Promise<void>
  /** Outbound webhooks: `gc.finished` / `gc.failed` are emitted with the run's end. */
  notifier?: Notifier
}

/** The bounded log (gc_runs.log) and each step's excerpt. */
const LOG_BYTES = 64 * 1024
const STEP_OUTPUT_BYTES = 2048
/** How long `verify` waits for the registry to answer again after `after` restarted it. */
const SERVING_TIMEOUT_MS = 60_000
/** While a command runs, its output is saved at most this often (for GET /v1/gc-runs/{id}). */
const SAVE_EVERY_MS = 1000

/** A protocol step failed: the run ends `failed` naming it. */
class StepFailed extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message)
    this.name = 'StepFailed'
  }
}

/** The run's lease was lost (another replica took the run over): stop at once, touch nothing. */
class Fenced extends Error {
  constructor(reason: string) {
    super(`the GC run's lease was lost: ${reason}`)
    this.name = 'Fenced'
  }
}

/** What a `gc.run` job carries. */
export const GcRunPayloadSchema = Type.Object({ runId: Type.String() })

/**
 * The `gc.run` job kind; when the queue gives up on it, the run ends failed at its open step, in
 * the transaction that fails the job. GC runs are listed for every role, so are their jobs.
 */
export function gcJob(deps: GcHandlerDeps): JobKind<typeof GcRunPayloadSchema> {
  return {
    kind: GC_RUN,
    payload: GcRunPayloadSchema,
    run: ({ runId }, job, ctx) => runGc(deps, runId, job, ctx),
    onFailed: (client, { runId }, job) => failRun(client, runId, job, deps.notifier),
    visibleTo: async (principal) => principal.roles.length > 0,
  }
}

/**
 * The `gc.run` job: the safety protocol of reliability R14 for one run, step by step.
 *
 *   wait-deletions  the run is `running` now, so new deletion jobs of the registry wait
 *                   (gcBlocksDeletions); this waits for the ones already under way
 *   before          the `before` command (restart read-only, stop issuing write tokens…)
 *   wait            waitMs for in-flight uploads and write tokens to end (distribution #3045)
 *   dry-run         the collector's dry run; too much eligible (abortIfShareAbove/BytesAbove) or
 *                   untagged index children about to go (#3004) abort the run
 *   gc              closes the restore window, runs the collector, measures the space
 *   after           the `after` command (lift read-only, restart to flush the blob descriptor
 *                   cache: #1803, #4569); runs whenever `before` or `gc` was attempted, even
 *                   after a failure
 *   verify          every remaining tag (or a sample) answers, with its manifests and blobs
 *
 * A failed step stops the run, `after` still runs, and the run ends `failed` naming the step.
 * No transaction is open while a command or the registry runs: the run is held by a lease on its
 * row, renewed while the protocol runs; a replica that cannot renew it kills its command and
 * stops, leaving `after` to whoever takes the run over.
 */
async function runGc(deps: GcHandlerDeps, runId: string, job: Job, ctx: JobContext) {
  const run = await getRun(deps.pool, runId)
  if (!run) throw new NonRetryableJobError(`GC run ${runId} does not exist`)
  if (run.job_id !== job.id) return { skipped: 'superseded by a later request for the same run' }
  if (run.state !== 'queued' && run.state !== 'running') return { skipped: run.state }

  const configured = deps.registries.list().find((r) => r.config.name === run.registry)
  const gc = configured?.config.gc
  if (!configured || !gc) {
    await endRun(deps, run, {
      state: 'failed',
      failedStep: 'config',
      error: 'the registry has no gc config',
    })
    throw new NonRetryableJobError(`registry ${run.registry} has no gc config`)
  }

  if (run.state === 'queued') {
    const wait = await startDelay(deps.pool, run, gc)
    if (wait) throw await deferJob(deps.pool, job, wait.reason, wait.ms)
  }

  const owner = randomUUID()
  const acquired = await withTransaction(deps.pool, async (client) => {
    const row = await acquireRun(client, run.id, job.id, owner, deps.leaseMs)
    if (!row) return undefined
    await appendAuditEvent(client, {
      ...actorFor(row),
      action: run.state === 'running' ? 'gc.resumed' : 'gc.started',
      outcome: 'running',
      registry: row.registry,
      details: {
        runId: row.id,
        jobId: job.id,
        attempt: job.attempts,
        trigger: row.trigger,
        dryRun: row.dry_run,
      },
    })
    return row
  })
  if (!acquired) {
    const current = await getRun(deps.pool, run.id)
    if (current?.state === 'running' && current.job_id === job.id && current.lease_until) {
      // Still leased by a worker that lost this job's lease but may yet be running the command.
      const left = current.lease_until.getTime() - Date.now()
      throw await deferJob(
        deps.pool,
        job,
        'waiting for the previous holder of the GC run to let go',
        left + 100,
      )
    }
    return { skipped: current?.state ?? 'gone' }
  }
  await deps.notify?.(run.id).catch(() => {})
  return new Execution(deps, acquired, gc, configured, job, ctx, owner).run()
}

/**
 * Why a queued run may not start yet, and for how long: the coalescing quiet period, or the
 * restore window (GC waits until the newest restorable deletion is older than restoreWindowMs).
 */
async function startDelay(
  pool: pg.Pool,
  run: GcRunRow,
  gc: GcConfig,
): Promise<{ ms: number; reason: string } | undefined> {
  const now = Date.now()
  if (run.not_before.getTime() > now) {
    return { ms: run.not_before.getTime() - now, reason: `waiting until ${run.not_before.toISOString()}` }
  }
  if (!run.dry_run && gc.restoreWindowMs) {
    const newest = await newestRestorableDeletion(pool, run.registry)
    const opens = newest ? newest.getTime() + gc.restoreWindowMs : 0
    if (opens > now) {
      await pushBackRun(pool, run.id, new Date(opens))
      return {
        ms: opens - now,
        reason: `waiting for the restore window until ${new Date(opens).toISOString()}`,
      }
    }
  }
  return undefined
}

class Execution {
  private readonly steps: GcStep[]
  private log: string
  private readonly numbers: RunNumbers = {}
  /** Aborted by the job's signal (shutdown, job lease lost) or by fencing. */
  private readonly stop = new AbortController()
  /** Aborted only by fencing: `after` must still run on a shutdown. */
  private readonly fence = new AbortController()
  private saving: Promise<void> = Promise.resolve()
  private lastSave = 0
  private restoreWindowClosed = 0
  private readonly client: RegistryClient
  private readonly env: Record<string, string | undefined>

  constructor(
    private readonly deps: GcHandlerDeps,
    private readonly row: GcRunRow,
    private readonly gc: GcConfig,
    configured: ConfiguredRegistry,
    private readonly job: Job,
    private readonly ctx: JobContext,
    private readonly owner: string,
  ) {
    this.client = configured.client
    this.env = secretEnv(deps.env)
    this.steps = [...row.steps]
    this.log = row.log
    if (row.steps.length > 0) this.line(`-- attempt ${job.attempts}: resuming after an interrupted attempt`)
  }

  async run(): Promise<unknown> {
    const onAbort = () => this.stop.abort(this.ctx.signal.reason)
    if (this.ctx.signal.aborted) onAbort()
    else this.ctx.signal.addEventListener('abort', onAbort, { once: true })
    const renewal = this.renewLease()
    try {
      return await this.protocol()
    } finally {
      clearInterval(renewal)
      this.ctx.signal.removeEventListener('abort', onAbort)
    }
  }

  private async protocol(): Promise<unknown> {
    const gc = this.gc
    const real = !this.row.dry_run && gc.executor.kind !== 'none'
    let failure: StepFailed | undefined
    let afterDue = false
    try {
      if (this.row.dry_run) {
        await this.dryRunStep({ enforce: false })
      } else if (gc.executor.kind === 'none') {
        await this.step('gc', async (out) => {
          await runExecutor(gc.executor, this.executorOptions(false), this.io(out))
        })
      } else {
        await this.step('wait-deletions', (out) => this.waitForDeletions(out))
        if (gc.before) {
          afterDue = true
          await this.step('before', (out) => this.hook(gc.before!, out))
        }
        await this.step('wait', async (out) => {
          if (gc.waitMs > 0) out(`waiting ${gc.waitMs} ms for in-flight uploads and write tokens to end`)
          await sleep(gc.waitMs, undefined, { signal: this.stop.signal })
        })
        // --delete-untagged is checked against tagged indexes even when dryRunFirst is off (#3004).
        if (gc.dryRunFirst || this.row.delete_untagged) await this.dryRunStep({ enforce: true })
        afterDue = true
        await this.gcStep()
      }
    } catch (err) {
      if (!(err instanceof StepFailed)) throw await this.interrupted(err, afterDue && real)
      failure = err
    }

    if (afterDue && real && gc.after) {
      try {
        await this.step('after', (out) => this.hook(gc.after!, out), { signal: this.fence.signal })
      } catch (err) {
        if (!(err instanceof StepFailed)) throw await this.interrupted(err, false)
        failure ??= err
      }
    }
    if (!failure && real && gc.verify !== 'none') {
      try {
        await this.step('verify', (out) => this.verify(out))
      } catch (err) {
        if (!(err instanceof StepFailed)) throw await this.interrupted(err, false)
        failure = err
      }
    }
    if (this.stop.signal.aborted) throw await this.interrupted(this.stop.signal.reason, false)

    const ended = await this.finish(failure)
    if (failure)
      throw new NonRetryableJobError(`GC run ${this.row.id} failed at ${failure.step}: ${failure.message}`)
    return { runId: ended.id, state: ended.state, bytesFreed: freed(ended) }
  }

  // ---- steps -----------------------------------------------------------------------------------

  private async step<T>(
    name: string,
    work: (out: (line: string) => void) => Promise<T>,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const entry: GcStep = {
      name,
      attempt: this.job.attempts,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      ok: null,
      output: '',
    }
    this.steps.push(entry)
    this.line(`== ${name}`)
    await this.save(true)
    let excerpt = ''
    const out = (line: string) => {
      excerpt = tailBytes(`${excerpt}${line}\n`, STEP_OUTPUT_BYTES)
      this.line(line)
      if (Date.now() - this.lastSave > SAVE_EVERY_MS) void this.save(false)
    }
    const signal = options.signal ?? this.stop.signal
    try {
      signal.throwIfAborted()
      const result = await work(out)
      entry.ok = true
      return result
    } catch (err) {
      entry.ok = false
      const message = err instanceof Error ? err.message : String(err)
      out(`${name} failed: ${message}`)
      // An interruption (shutdown, lost lease) is not the step's failure: the run is resumed.
      if (err instanceof StepFailed || err instanceof Fenced || signal.aborted) throw err
      throw new StepFailed(name, message)
    } finally {
      entry.finishedAt = new Date().toISOString()
      entry.output = excerpt.trimEnd()
      await this.save(true)
    }
  }

  private async waitForDeletions(out: (line: string) => void): Promise<void> {
    let announced = -1
    for (;;) {
      const running = await runningJobsOf(this.deps.pool, this.row.registry, [EXECUTE_DELETION])
      if (running === 0) break
      if (running !== announced)
        out(`waiting for ${running} deletion job(s) of ${this.row.registry} to finish`)
      announced = running
      await sleep(this.deps.pollMs, undefined, { signal: this.stop.signal })
    }
    out('no deletion of this registry is running; new ones wait until this run ends')
  }

  private async hook(hook: NonNullable<GcConfig['before']>, out: (line: string) => void): Promise<void> {
    const command = hookCommand(hook)
    out(`$ ${command.argv.join(' ')}`)
    const result = await runCommand(
      {
        argv: command.argv,
        env: childEnv(this.env, command.env),
        timeoutMs: command.timeoutMs,
        ...(command.cwd ? { cwd: command.cwd } : {}),
      },
      { signal: this.fence.signal, onLine: out },
    )
    const failure = commandFailure(result, command.timeoutMs)
    if (failure) throw new Error(failure)
  }

  /**
   * The collector's dry run. `enforce`: part of a real run, whose thresholds abort it; a requested
   * dry run only reports.
   */
  private async dryRunStep({ enforce }: { enforce: boolean }): Promise<void> {
    await this.step('dry-run', async (out) => {
      const storage = this.gc.storagePath
      if (!enforce && storage) this.numbers.bytesBefore = await this.measure(out)
      const result = await runExecutor(this.gc.executor, this.executorOptions(true), this.io(out))
      if (result.failure) throw new Error(result.failure)
      const report = result.report
      this.numbers.markedBlobs = report.markedBlobs
      this.numbers.eligibleBlobs = report.eligibleBlobs
      this.numbers.eligibleManifests = report.eligibleManifests
      if (storage) this.numbers.eligibleBytes = await blobBytes(storage, report.eligibleBlobDigests)
      const share = eligibleShare(report)
      out(
        `dry run: ${report.markedBlobs ?? '?'} blobs marked, ${report.eligibleBlobs ?? '?'} blobs` +
          `${this.numbers.eligibleBytes != null ? ` (${this.numbers.eligibleBytes} bytes)` : ''} and ` +
          `${report.eligibleManifests ?? '?'} manifests eligible` +
          `${share !== null ? `: ${(share * 100).toFixed(1)}% of blobs` : ''}`,
      )
      const problems = await this.dryRunProblems(report, share)
      for (const problem of problems) out(`${enforce ? 'abort' : 'warning'}: ${problem}`)
      if (!enforce && storage) this.numbers.bytesAfter = await this.measure(out)
      if (enforce && problems.length > 0) throw new Error(problems.join('; '))
    })
  }

  private async dryRunProblems(report: GcReport, share: number | null): Promise<string[]> {
    const problems: string[] = []
    const { abortIfShareAbove, abortIfBytesAbove } = this.gc
    if (this.gc.executor.kind === 'command' && report.eligibleBlobs === null) {
      problems.push('the dry run printed no "N blobs marked, M blobs and K manifests eligible" summary')
    }
    if (abortIfShareAbove !== undefined) {
      if (share === null) problems.push('abortIfShareAbove is set but the dry run reported no blob counts')
      else if (share > abortIfShareAbove) {
        problems.push(
          `${report.eligibleBlobs} of ${report.eligibleBlobs! + report.markedBlobs!} blobs ` +
            `(${(share * 100).toFixed(1)}%) are eligible, above abortIfShareAbove ${abortIfShareAbove}`,
        )
      }
    }
    if (abortIfBytesAbove !== undefined) {
      const bytes = this.numbers.eligibleBytes
      if (bytes == null) problems.push('abortIfBytesAbove needs storagePath to size the eligible blobs')
      else if (bytes > abortIfBytesAbove) {
        problems.push(`${bytes} bytes are eligible, above abortIfBytesAbove ${abortIfBytesAbove}`)
      }
    }
    if (this.row.delete_untagged && report.eligibleManifestDigests.length > 0) {
      // distribution #3004: --delete-untagged deletes untagged children of tagged indexes.
      const children = await this.indexChildren()
      const hit = report.eligibleManifestDigests.filter((d) => children.has(d))
      if (hit.length > 0) {
        problems.push(
          `--delete-untagged would delete ${hit.length} manifest(s) that tagged indexes still list ` +
            `(distribution #3004): ${hit.slice(0, 5).join(', ')}`,
        )
      }
    }
    return problems
  }

  /** Digests of every manifest a tagged index lists (recursively), across the registry. */
  private async indexChildren(): Promise<Set<string>> {
    const children = new Set<string>()
    const visit = async (repository: string, reference: string): Promise<void> => {
      const head = await this.client.headManifest(repository, reference)
      if (head?.kind !== 'index') return
      const { manifest } = await this.client.getManifest(repository, head.digest)
      if (manifest.kind !== 'index') return
      for (const child of manifest.manifests) {
        if (children.has(child.digest)) continue
        children.add(child.digest)
        await visit(repository, child.digest)
      }
    }
    for await (const repository of this.client.catalog()) {
      const tags: string[] = []
      try {
        for await (const tag of this.client.tags(repository)) tags.push(tag)
      } catch {}
      for (const tag of tags) await visit(repository, tag)
      this.stop.signal.throwIfAborted()
    }
    return children
  }

  private async gcStep(): Promise<void> {
    await this.step('gc', async (out) => {
      const storage = this.gc.storagePath
      if (storage) this.numbers.bytesBefore = await this.measure(out)
      // The restore window closes before a single blob goes: once the collector has started, a
      // restore could push back a manifest whose blobs are already gone.
      this.restoreWindowClosed = await withTransaction(this.deps.pool, async (client) => {
        const at = await markGcStarted(client, this.row.id, this.owner)
        if (!at) throw new Fenced('the run is no longer ours')
        const closed = await closeRestoreWindow(client, this.row.registry, at)
        if (closed > 0) {
          await appendAuditEvent(client, {
            ...actorFor(this.row),
            action: 'gc.restore_window_closed',
            outcome: 'closed',
            registry: this.row.registry,
            details: { runId: this.row.id, items: closed, before: at.toISOString() },
          })
        }
        return closed
      })
      out(`restore window closed for ${this.restoreWindowClosed} deleted item(s)`)
      const result = await runExecutor(this.gc.executor, this.executorOptions(false), this.io(out))
      const report = result.report
      // Without a dry run first, what the collector itself printed is what was eligible.
      this.numbers.markedBlobs ??= report.markedBlobs
      this.numbers.eligibleBlobs ??= report.eligibleBlobs
      this.numbers.eligibleManifests ??= report.eligibleManifests
      this.numbers.collectedBlobs = report.collectedBlobs ?? (result.failure ? null : report.eligibleBlobs)
      this.numbers.collectedManifests =
        report.collectedManifests ?? (result.failure ? null : report.eligibleManifests)
      this.numbers.bytesReportedFreed = report.reportedFreedBytes
      if (storage) this.numbers.bytesAfter = await this.measure(out)
      if (storage && this.numbers.bytesBefore != null && this.numbers.bytesAfter != null) {
        out(`freed ${this.numbers.bytesBefore - this.numbers.bytesAfter} bytes`)
      }
      if (result.failure) throw new Error(result.failure)
    })
  }

  private async verify(out: (line: string) => void): Promise<void> {
    await waitUntilServing(this.client, SERVING_TIMEOUT_MS, this.stop.signal)
    const result = await verifyRegistry(this.client, this.gc.verify as 'all' | number, this.stop.signal)
    out(
      `checked ${result.tagsChecked} of ${result.tags} tag(s) in ${result.repositories} repositories: ` +
        `${result.manifestsChecked} manifests, ${result.blobsChecked} blobs`,
    )
    for (const problem of result.problems) out(`missing: ${problem}`)
    if (result.problems.length > 0) {
      throw new Error(`${result.problems.length} problem(s), first: ${result.problems[0]}`)
    }
  }

  private async measure(out: (line: string) => void): Promise<number> {
    const { bytes, files } = await storageBytes(this.gc.storagePath!)
    out(`storage ${this.gc.storagePath}: ${bytes} bytes in ${files} files`)
    return bytes
  }

  private executorOptions(dryRun: boolean) {
    return { dryRun, deleteUntagged: this.row.delete_untagged }
  }

  private io(out: (line: string) => void) {
    return { env: this.env, signal: this.stop.signal, onLine: out }
  }

  // ---- bookkeeping -----------------------------------------------------------------------------

  private line(text: string): void {
    this.log += `${text}\n`
    if (this.log.length > LOG_BYTES * 2) this.log = tailBytes(this.log, LOG_BYTES)
  }

  /** Saves steps, log and numbers; serialised, so a late save never overwrites a newer one. */
  private save(announce: boolean): Promise<void> {
    this.lastSave = Date.now()
    this.saving = this.saving.then(async () => {
      try {
        const ours = await recordProgress(this.deps.pool, this.row.id, this.owner, {
          steps: this.steps,
          log: boundedLog(this.log),
          numbers: this.numbers,
        })
        if (!ours) this.lose('the run row is no longer leased to this worker')
        else if (announce) await this.deps.notify?.(this.row.id).catch(() => {})
      } catch (err) {
        this.ctx.log.warn({ err }, 'saving GC run progress failed')
      }
    })
    return this.saving
  }

  private renewLease(): NodeJS.Timeout {
    let renewedAt = Date.now()
    let busy = false
    const timer = setInterval(() => {
      if (busy) return
      busy = true
      const started = Date.now()
      renewRunLease(this.deps.pool, this.row.id, this.owner, this.deps.leaseMs)
        .then((ours) => {
          if (ours) renewedAt = started
          else this.lose('another worker took the run over')
        })
        .catch((err: unknown) => {
          this.ctx.log.warn({ err }, 'renewing the GC run lease failed')
          // Self-fencing: past our lease another replica may start the same run; our command
          // must not be running then.
          if (Date.now() - renewedAt > this.deps.leaseMs - this.deps.renewMs) {
            this.lose('the lease could not be renewed in time')
          }
        })
        .finally(() => {
          busy = false
        })
    }, this.deps.renewMs)
    timer.unref()
    return timer
  }

  private lose(reason: string): void {
    if (this.fence.signal.aborted) return
    this.ctx.log.error({ runId: this.row.id, reason }, 'GC run fenced: stopping its commands')
    const error = new Fenced(reason)
    this.fence.abort(error)
    this.stop.abort(error)
  }

  /**
   * The job was stopped (shutdown, lost job lease) or fenced. The run stays `running` for the
   * attempt that takes it over, which starts the protocol again. Unless fenced, `after` runs now
   * (the registry must not stay read-only meanwhile) and the run's lease is let go.
   */
  private async interrupted(reason: unknown, runAfter: boolean): Promise<unknown> {
    const fenced = this.fence.signal.aborted
    if (runAfter && !fenced && this.gc.after) {
      await this.step('after', (out) => this.hook(this.gc.after!, out), { signal: this.fence.signal }).catch(
        () => {},
      )
    }
    await this.saving
    if (!fenced) await releaseRunLease(this.deps.pool, this.row.id, this.owner).catch(() => {})
    return reason instanceof Error ? reason : new Error(String(reason))
  }

  private async finish(failure: StepFailed | undefined): Promise<GcRunRow> {
    await this.save(false)
    await this.saving
    const outcome = failure
      ? { state: 'failed' as const, failedStep: failure.step, error: failure.message }
      : { state: 'succeeded' as const }
    const ended = await endRun(this.deps, this.row, outcome, {
      details: { restoreWindowClosed: this.restoreWindowClosed },
      owner: this.owner,
    })
    if (!ended) throw new Fenced('the run ended elsewhere')
    return ended
  }
}

/**
 * Ends a run with its audit event (`gc.finished` or `gc.failed`) in one transaction, and queues the
 * follow-up run deletions asked for while it could no longer collect their garbage.
 */
export async function endRun(
  deps: Pick<GcHandlerDeps, 'pool' | 'notify' | 'notifier'>,
  run: GcRunRow,
  outcome: { state: 'succeeded' | 'failed'; failedStep?: string; error?: string },
  options: { details?: Record<string, unknown>; owner?: string } = {},
): Promise<GcRunRow | undefined> {
  const ended = await withTransaction(deps.pool, (client) =>
    endRunIn(client, run.id, outcome, options.details ?? {}, options.owner, deps.notifier),
  )
  await deps.notify?.(run.id).catch(() => {})
  return ended
}

async function endRunIn(
  client: pg.PoolClient,
  runId: string,
  outcome: { state: 'succeeded' | 'failed'; failedStep?: string | null; error?: string | null },
  details: Record<string, unknown>,
  owner?: string,
  notifier?: Notifier,
): Promise<GcRunRow | undefined> {
  const ended = await finishRun(client, runId, outcome, owner)
  if (!ended) return undefined
  if (ended.followup_after) {
    const next = await insertRun(client, {
      registry: ended.registry,
      trigger: 'coalesced',
      requestedBy: 'regent',
      dryRun: false,
      deleteUntagged: false,
      notBefore: ended.followup_after,
    })
    if (next) await enqueueRun(client, next, systemActor(`gc-${next.id}`), { followUpOf: ended.id })
  }
  await appendAuditEvent(client, {
    ...actorFor(ended),
    action: outcome.state === 'succeeded' ? 'gc.finished' : 'gc.failed',
    outcome: outcome.state,
    registry: ended.registry,
    details: {
      runId: ended.id,
      trigger: ended.trigger,
      dryRun: ended.dry_run,
      failedStep: ended.failed_step,
      error: ended.error,
      eligibleBlobs: num(ended.eligible_blobs),
      eligibleBytes: num(ended.eligible_bytes),
      bytesBefore: num(ended.bytes_before),
      bytesAfter: num(ended.bytes_after),
      bytesFreed: freed(ended),
      ...details,
    },
  })
  if (notifier?.active) await notifier.notify(client, gcEvent(ended))
  return ended
}

/** A finished or failed run as a notification; a GC run is about a registry, not a team. */
function gcEvent(run: GcRunRow) {
  const view = toRunView(run, { withLog: false })
  return {
    type: run.state === 'succeeded' ? ('gc.finished' as const) : ('gc.failed' as const),
    subject: run.id,
    registry: run.registry,
    summary: view.summary,
    data: jsonObject({
      runId: view.id,
      state: view.state,
      trigger: view.trigger,
      dryRun: view.dryRun,
      deleteUntagged: view.deleteUntagged,
      requestedBy: view.requestedBy,
      failedStep: view.failedStep,
      error: view.error,
      eligible: view.eligible,
      collected: view.collected,
      bytesBefore: view.bytesBefore,
      bytesAfter: view.bytesAfter,
      bytesFreed: view.bytesFreed,
      startedAt: view.startedAt,
      finishedAt: view.finishedAt,
    }),
  }
}

/**
 * The queue gave up on a GC job (attempts spent, or a crash on the last one): its run, if still
 * open, fails naming the step it was in. Runs in the queue's transaction that fails the job.
 */
async function failRun(client: pg.PoolClient, runId: string, job: Job, notifier?: Notifier): Promise<void> {
  const run = await getRun(client, runId, { forUpdate: true })
  if (!run || run.job_id !== job.id || (run.state !== 'queued' && run.state !== 'running')) return
  const open = [...run.steps].reverse().find((s) => s.ok !== true)
  await endRunIn(
    client,
    run.id,
    { state: 'failed', failedStep: open?.name ?? 'job', error: job.lastError ?? 'the GC job failed' },
    { jobFailed: true },
    undefined,
    notifier,
  )
}

/** The worker acts for whoever asked for the run; both are on every event. */
function actorFor(run: GcRunRow) {
  return workerActor(run.requested_on_behalf_of ?? run.requested_by, [], `gc-${run.id}`)
}

function num(value: string | null): number | null {
  return value === null ? null : Number(value)
}

/** The last `bytes` bytes of `text` (UTF-8), cut at a character boundary. */
function tailBytes(text: string, bytes: number): string {
  const buffer = Buffer.from(text, 'utf8')
  if (buffer.length <= bytes) return text
  let start = buffer.length - bytes
  // Skip UTF-8 continuation bytes so no character is cut in half.
  while (start < buffer.length && (buffer[start]! & 0xc0) === 0x80) start++
  return buffer.subarray(start).toString('utf8')
}

function boundedLog(log: string): string {
  const tail = tailBytes(log, LOG_BYTES)
  return tail.length < log.length ? `…(earlier output cut)\n${tailBytes(tail, LOG_BYTES - 64)}` : tail
}
