/**
 * Retry delays: exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff
 * and Jitter"). The ceiling doubles per failed attempt up to a cap, and the delay is drawn
 * uniformly below it, so replicas retrying after one shared outage (a registry restart) spread out
 * instead of returning in lockstep.
 */
export interface BackoffOptions {
  /** Ceiling after the first failed attempt. */
  baseMs: number
  /** No delay is longer than this. */
  maxMs: number
}

/** The largest delay after failed attempt `attempt` (1-based): min(maxMs, baseMs · 2^(attempt-1)). */
export function backoffCeiling(attempt: number, options: BackoffOptions): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1)
  // 2 ** 1100 is Infinity, which min() turns into the cap: no overflow to guard against.
  return Math.max(0, Math.min(options.maxMs, options.baseMs * 2 ** exponent))
}

/**
 * The delay before the next attempt after failed attempt `attempt`: uniform in [0, ceiling].
 * `random` returns a number in [0, 1]; tests pin it to make the delays exact.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const share = Math.min(1, Math.max(0, random()))
  return Math.round(share * backoffCeiling(attempt, options))
}
