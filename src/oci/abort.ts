import { setTimeout as delay } from 'node:timers/promises'

/** What the calls a caller may give up on accept: an aborted signal rejects them with its reason. */
export interface Cancellable {
  signal?: AbortSignal | undefined
}

/** Waits `ms`, or rejects with the signal's reason as soon as it is aborted. */
export async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return delay(ms)
  try {
    await delay(ms, undefined, { signal })
  } catch (err) {
    // Node rejects with its own AbortError; callers expect the reason they aborted with.
    throw signal.aborted ? signal.reason : err
  }
}

/**
 * Settles like `promise`, or rejects with the signal's reason as soon as it is aborted. For work
 * other callers share (the first `/v2/` ping, a token fetch): this caller stops waiting for it,
 * while the work itself runs on for the others.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
