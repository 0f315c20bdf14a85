import type { RegistryClient } from '../oci/index.js'
import type { ConfiguredRegistry } from './registry-set.js'

/**
 * A registry whose client stops starting calls once `signal` is aborted, and whose pending calls
 * reject at once with the signal's reason: a GraphQL request that timed out or whose client went
 * away no longer walks the registry. A call already sent runs to its own timeouts meanwhile; the
 * client takes no signal of its own yet.
 */
export function abortable(target: ConfiguredRegistry, signal: AbortSignal | undefined): ConfiguredRegistry {
  if (!signal) return target
  const client = new Proxy(target.client, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        signal.throwIfAborted()
        const result: unknown = value.apply(object, args)
        if (result instanceof Promise) return untilAborted(result, signal)
        if (isAsyncIterator(result)) return iterateUntilAborted(result, signal)
        return result
      }
    },
  }) as RegistryClient
  return { ...target, client }
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function isAsyncIterator(value: unknown): value is AsyncGenerator<unknown> {
  return typeof (value as AsyncGenerator<unknown> | undefined)?.[Symbol.asyncIterator] === 'function'
}

async function* iterateUntilAborted<T>(source: AsyncGenerator<T>, signal: AbortSignal): AsyncGenerator<T> {
  try {
    for (;;) {
      const next = await untilAborted(source.next(), signal)
      if (next.done) return
      yield next.value
    }
  } finally {
    // Ends the source's own loop (its finally blocks release what it holds).
    await source.return(undefined).catch(() => {})
  }
}
