import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { appendAuditEvent } from '../audit/index.js'
import { withTransaction } from '../db/transaction.js'
import { closeRestoreWindow, EXECUTE_DELETION } from '../deletions/index.js'
import { type Job, NonRetryableJobError, runningJobsOf } from '../jobs/index.js'
import { secretEnv } from '../lib/secrets.js'
import type { RegistryClient } from '../oci/index.js'
import { childEnv, commandFailure, runCommand } from './command.js'
import { type GcConfig, hookCommand } from './config-schema.js'
import { dryRunProblems } from './dry-run-checks.js'
import { endRun, type RunEndListeners, runActor } from './end-run.js'
import { runExecutor } from './executors.js'
import { Fenced, type RunLease } from './lease.js'
import { eligibleShare } from './output.js'
import type { RunProgress } from './progress.js'
import { freed, type GcRunRow, markGcStarted } from './sql.js'
import { blobBytes, storageBytes } from './storage.js'
import { verifyRegistry, waitUntilServing } from './verify.js'

/** How long `verify` waits for the registry to answer again after `after` restarted it. */
const SERVING_TIMEOUT_MS = 60_000

/** What the protocol needs besides the run: the database, Regent's environment, its listeners. */
export interface ProtocolDeps extends RunEndListeners {
  pool: pg.Pool
  /**
   * Regent's environment (default process.env, like the registry client's credentials): commands
   * get PATH and HOME from it, the http executor its password.
   */
  env?: Record<string, string | undefined>
  /** How often the `wait-deletions` step looks at the deletion jobs still running. */
  pollMs: number
}

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

/**
 * One attempt at a GC run's safety protocol, step by step:
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
 * A failed step stops the run, `after` still runs, and the run ends `failed` naming the step. The
 * run is held by its lease (lease.ts) throughout; what the steps do is saved as they go
 * (progress.ts). A stopped or fenced attempt leaves the run `running` for the next attempt.
 */
export class RunProtocol {
  private restoreWindowClosed = 0
  private readonly env: Record<string, string | undefined>

  constructor(
    private readonly deps: ProtocolDeps,
    private readonly row: GcRunRow,
    private readonly gc: GcConfig,
    private readonly client: RegistryClient,
    private readonly job: Job,
    private readonly lease: RunLease,
    private readonly progress: RunProgress,
  ) {
    this.env = secretEnv(deps.env)
    if (row.steps.length > 0)
      progress.line(`-- attempt ${job.attempts}: resuming after an interrupted attempt`)
  }

  async run(): Promise<unknown> {
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
          await sleep(gc.waitMs, undefined, { signal: this.lease.signal })
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
        await this.step('after', (out) => this.hook(gc.after!, out), { signal: this.lease.fenceSignal })
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
    if (this.lease.signal.aborted) throw await this.interrupted(this.lease.signal.reason, false)

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
    const record = await this.progress.openStep(name, this.job.attempts)
    const signal = options.signal ?? this.lease.signal
    let ok = false
    try {
      signal.throwIfAborted()
      const result = await work(record.out)
      ok = true
      return result
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      record.out(`${name} failed: ${message}`)
      // An interruption (shutdown, lost lease) is not the step's failure: the run is resumed.
      if (err instanceof StepFailed || err instanceof Fenced || signal.aborted) throw err
      throw new StepFailed(name, message)
    } finally {
      await record.close(ok)
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
      await sleep(this.deps.pollMs, undefined, { signal: this.lease.signal })
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
      { signal: this.lease.fenceSignal, onLine: out },
    )
    const failure = commandFailure(result, command.timeoutMs)
    if (failure) throw new Error(failure)
  }

  /**
   * The collector's dry run. `enforce`: part of a real run, whose thresholds abort it; a requested
   * dry run only reports.
   */
  private async dryRunStep({ enforce }: { enforce: boolean }): Promise<void> {
    const numbers = this.progress.numbers
    await this.step('dry-run', async (out) => {
      const storage = this.gc.storagePath
      if (!enforce && storage) numbers.bytesBefore = await this.measure(out)
      const result = await runExecutor(this.gc.executor, this.executorOptions(true), this.io(out))
      if (result.failure) throw new Error(result.failure)
      const report = result.report
      numbers.markedBlobs = report.markedBlobs
      numbers.eligibleBlobs = report.eligibleBlobs
      numbers.eligibleManifests = report.eligibleManifests
      if (storage) numbers.eligibleBytes = await blobBytes(storage, report.eligibleBlobDigests)
      const share = eligibleShare(report)
      out(
        `dry run: ${report.markedBlobs ?? '?'} blobs marked, ${report.eligibleBlobs ?? '?'} blobs` +
          `${numbers.eligibleBytes != null ? ` (${numbers.eligibleBytes} bytes)` : ''} and ` +
          `${report.eligibleManifests ?? '?'} manifests eligible` +
          `${share !== null ? `: ${(share * 100).toFixed(1)}% of blobs` : ''}`,
      )
      const problems = await dryRunProblems(report, share, numbers.eligibleBytes, {
        gc: this.gc,
        deleteUntagged: this.row.delete_untagged,
        client: this.client,
        signal: this.lease.signal,
      })
      for (const problem of problems) out(`${enforce ? 'abort' : 'warning'}: ${problem}`)
      if (!enforce && storage) numbers.bytesAfter = await this.measure(out)
      if (enforce && problems.length > 0) throw new Error(problems.join('; '))
    })
  }

  private async gcStep(): Promise<void> {
    const numbers = this.progress.numbers
    await this.step('gc', async (out) => {
      const storage = this.gc.storagePath
      if (storage) numbers.bytesBefore = await this.measure(out)
      // The restore window closes before a single blob goes: once the collector has started, a
      // restore could push back a manifest whose blobs are already gone.
      this.restoreWindowClosed = await withTransaction(this.deps.pool, async (client) => {
        const at = await markGcStarted(client, this.row.id, this.lease.owner)
        if (!at) throw new Fenced('the run is no longer ours')
        const closed = await closeRestoreWindow(client, this.row.registry, at)
        if (closed > 0) {
          await appendAuditEvent(client, {
            ...runActor(this.row),
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
      numbers.markedBlobs ??= report.markedBlobs
      numbers.eligibleBlobs ??= report.eligibleBlobs
      numbers.eligibleManifests ??= report.eligibleManifests
      numbers.collectedBlobs = report.collectedBlobs ?? (result.failure ? null : report.eligibleBlobs)
      numbers.collectedManifests =
        report.collectedManifests ?? (result.failure ? null : report.eligibleManifests)
      numbers.bytesReportedFreed = report.reportedFreedBytes
      if (storage) numbers.bytesAfter = await this.measure(out)
      if (storage && numbers.bytesBefore != null && numbers.bytesAfter != null) {
        out(`freed ${numbers.bytesBefore - numbers.bytesAfter} bytes`)
      }
      if (result.failure) throw new Error(result.failure)
    })
  }

  private async verify(out: (line: string) => void): Promise<void> {
    await waitUntilServing(this.client, SERVING_TIMEOUT_MS, this.lease.signal)
    const result = await verifyRegistry(this.client, this.gc.verify as 'all' | number, this.lease.signal)
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
    return { env: this.env, signal: this.lease.signal, onLine: out }
  }

  // ---- the end ---------------------------------------------------------------------------------

  /**
   * The job was stopped (shutdown, lost job lease) or fenced. The run stays `running` for the
   * attempt that takes it over, which starts the protocol again. Unless fenced, `after` runs now
   * (the registry must not stay read-only meanwhile) and the run's lease is let go.
   */
  private async interrupted(reason: unknown, runAfter: boolean): Promise<unknown> {
    const fenced = this.lease.fenced
    if (runAfter && !fenced && this.gc.after) {
      await this.step('after', (out) => this.hook(this.gc.after!, out), {
        signal: this.lease.fenceSignal,
      }).catch(() => {})
    }
    await this.progress.settled()
    if (!fenced) await this.lease.release()
    return reason instanceof Error ? reason : new Error(String(reason))
  }

  private async finish(failure: StepFailed | undefined): Promise<GcRunRow> {
    await this.progress.save(false)
    const outcome = failure
      ? { state: 'failed' as const, failedStep: failure.step, error: failure.message }
      : { state: 'succeeded' as const }
    const ended = await endRun(this.deps, this.row, outcome, {
      details: { restoreWindowClosed: this.restoreWindowClosed },
      owner: this.lease.owner,
    })
    if (!ended) throw new Fenced('the run ended elsewhere')
    return ended
  }
}
