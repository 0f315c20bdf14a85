/**
 * Concurrent callers asking for the same thing share one call: the first starts it, the others wait
 * for its answer (or its error). Nothing is remembered once it settles; caching is the caller's.
 */
export class SingleFlight<V> {
  readonly #inFlight = new Map<string, Promise<V>>()

  run(key: string, work: () => Promise<V>): Promise<V> {
    const existing = this.#inFlight.get(key)
    if (existing) return existing
    const started = work().finally(() => this.#inFlight.delete(key))
    this.#inFlight.set(key, started)
    return started
  }

  get size(): number {
    return this.#inFlight.size
  }
}
