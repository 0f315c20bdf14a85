/**
 * At most `size` holders at once; the others wait in arrival order. A wait can be abandoned with
 * an AbortSignal (the waiter leaves the queue and gets the signal's reason).
 */
export class Semaphore {
  #free: number
  readonly #waiting: (() => void)[] = []

  constructor(readonly size: number) {
    this.#free = size
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted()
    if (this.#free > 0) {
      this.#free--
      return this.#releaser()
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', abandon)
        resolve()
      }
      const abandon = () => {
        const at = this.#waiting.indexOf(grant)
        if (at >= 0) this.#waiting.splice(at, 1)
        reject(signal!.reason)
      }
      this.#waiting.push(grant)
      signal?.addEventListener('abort', abandon, { once: true })
    })
    return this.#releaser()
  }

  /** Holders' slots handed straight to the next waiter, so a late arrival cannot jump the queue. */
  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      if (next) next()
      else this.#free++
    }
  }
}
