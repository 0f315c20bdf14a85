import type pg from 'pg'
import type { Static, TSchema } from 'typebox'
import { Value } from 'typebox/value'
import type { Principal } from '../auth/principal.js'
import { type JobContext, type JobHandler, NonRetryableJobError } from './handler.js'
import type { Job } from './types.js'

/**
 * A kind of job, declared by the feature that owns it, in one place: the shape of its payload,
 * what runs it, what happens when the queue gives up on it, and who may read such a job. The
 * worker checks every payload against the declared shape before the handler sees it, so a handler
 * gets typed data and never casts.
 */
export interface JobKind<S extends TSchema = TSchema> {
  kind: string
  payload: S
  run(payload: Static<S>, job: Job, ctx: JobContext): Promise<unknown>
  /**
   * Runs in the transaction that fails the job for good (its attempts spent): write the feature's
   * own outcome and audit event here, so both commit or neither does.
   */
  onFailed?(client: pg.PoolClient, payload: Static<S>, job: Job): Promise<void>
  /**
   * Who may read such a job (GET /v1/jobs/{id}), besides admins: those who may see what it acts
   * on. Without it, admins only.
   */
  visibleTo?(principal: Principal, payload: Static<S>, job: Job): Promise<boolean>
}

/** The job kinds of this process, as the features defined them. */
export class JobKinds {
  readonly #kinds = new Map<string, JobKind>()

  define<S extends TSchema>(kind: JobKind<S>): void {
    if (this.#kinds.has(kind.kind)) throw new Error(`job kind ${kind.kind} is defined twice`)
    this.#kinds.set(kind.kind, kind as unknown as JobKind)
  }

  get names(): string[] {
    return [...this.#kinds.keys()]
  }

  /** A handler per kind, each checking the payload before it runs. */
  handlers(): Record<string, JobHandler> {
    return Object.fromEntries(
      [...this.#kinds.values()].map((kind) => [
        kind.kind,
        (job: Job, ctx: JobContext) => kind.run(payloadOf(kind, job), job, ctx),
      ]),
    )
  }

  /** The kind's failure hook, in the transaction that fails the job for good. */
  async failed(client: pg.PoolClient, job: Job): Promise<void> {
    const kind = this.#kinds.get(job.kind)
    if (!kind?.onFailed || !Value.Check(kind.payload, job.payload)) return
    await kind.onFailed(client, job.payload, job)
  }

  /** Whether a non-admin may read the job. */
  async visible(principal: Principal, job: Job): Promise<boolean> {
    const kind = this.#kinds.get(job.kind)
    if (!kind?.visibleTo || !Value.Check(kind.payload, job.payload)) return false
    return kind.visibleTo(principal, job.payload, job)
  }
}

function payloadOf<S extends TSchema>(kind: JobKind<S>, job: Job): Static<S> {
  if (!Value.Check(kind.payload, job.payload)) {
    const [first] = [...Value.Errors(kind.payload, job.payload)]
    throw new NonRetryableJobError(
      `job ${job.id}: its payload is not a ${kind.kind} payload${first ? ` (${first.instancePath || '/'} ${first.message})` : ''}`,
    )
  }
  return job.payload
}
