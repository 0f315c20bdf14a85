import type pg from 'pg'
import type { JobLogger } from '../jobs/index.js'
import type { RunLease } from './lease.js'
import { type GcRunRow, type GcStep, type RunNumbers, recordProgress } from './sql.js'

/** The bounded log (gc_runs.log) and each step's excerpt. */
const LOG_BYTES = 64 * 1024
const STEP_OUTPUT_BYTES = 2048
/** While a command runs, its output is saved at most this often (for GET /v1/gc-runs/{id}). */
const SAVE_EVERY_MS = 1000

/** One open step: its output lines, then its end. */
export interface StepRecord {
  /** A line of output: into the run's log and the step's excerpt, saved now and then. */
  out(line: string): void
  /** Ends the step, ok or not, and saves the run (announced). */
  close(ok: boolean): Promise<void>
}

/**
 * What a run shows while it goes: its steps, its log and the numbers learnt, saved on the run row
 * under the run's lease. Saves are serialised, so a late save never overwrites a newer one; a save
 * that finds the row no longer leased to this worker fences the run.
 */
export class RunProgress {
  readonly steps: GcStep[]
  readonly numbers: RunNumbers = {}
  private log: string
  private saving: Promise<void> = Promise.resolve()
  private lastSave = 0

  constructor(
    row: GcRunRow,
    private readonly options: {
      pool: pg.Pool
      lease: RunLease
      /** Tells listeners (GraphQL subscriptions, other replicas) the run changed. */
      notify?: ((runId: string) => Promise<void>) | undefined
      log: JobLogger
    },
  ) {
    this.steps = [...row.steps]
    this.log = row.log
  }

  line(text: string): void {
    this.log += `${text}\n`
    if (this.log.length > LOG_BYTES * 2) this.log = tailBytes(this.log, LOG_BYTES)
  }

  /** Opens a step: it is saved and announced now, and again when it closes. */
  async openStep(name: string, attempt: number): Promise<StepRecord> {
    const entry: GcStep = {
      name,
      attempt,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      ok: null,
      output: '',
    }
    this.steps.push(entry)
    this.line(`== ${name}`)
    await this.save(true)
    let excerpt = ''
    return {
      out: (line) => {
        excerpt = tailBytes(`${excerpt}${line}\n`, STEP_OUTPUT_BYTES)
        this.line(line)
        if (Date.now() - this.lastSave > SAVE_EVERY_MS) void this.save(false)
      },
      close: async (ok) => {
        entry.ok = ok
        entry.finishedAt = new Date().toISOString()
        entry.output = excerpt.trimEnd()
        await this.save(true)
      },
    }
  }

  /** Saves steps, log and numbers after any save under way; `announce` tells listeners. */
  save(announce: boolean): Promise<void> {
    const { pool, lease, notify, log } = this.options
    this.lastSave = Date.now()
    this.saving = this.saving.then(async () => {
      try {
        const ours = await recordProgress(pool, lease.runId, lease.owner, {
          steps: this.steps,
          log: boundedLog(this.log),
          numbers: this.numbers,
        })
        if (!ours) lease.lose('the run row is no longer leased to this worker')
        else if (announce) await notify?.(lease.runId).catch(() => {})
      } catch (err) {
        log.warn({ err }, 'saving GC run progress failed')
      }
    })
    return this.saving
  }

  /** Resolves once every save asked for so far has ended. */
  settled(): Promise<void> {
    return this.saving
  }
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
