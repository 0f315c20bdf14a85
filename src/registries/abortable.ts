import type { RegistryClient } from '../oci/index.js'
import type { ConfiguredRegistry } from './registry-set.js'

/** The browsing calls of the client that take a signal. */
type CancellableCalls = Pick<
  RegistryClient,
  'catalog' | 'tags' | 'headManifest' | 'getManifest' | 'getBlob' | 'referrers'
>

/**
 * A registry whose client stops starting calls once `signal` is aborted, and whose pending calls
 * reject at once with the signal's reason: a GraphQL request that timed out or whose client went
 * away no longer walks the registry. The browsing calls get the signal itself, so the request in
 * flight is cut off and no retry follows. The other calls (probe, pushes, deletes) take no signal:
 * they are refused once it is aborted, and otherwise run to their end, since a write cut short
 * would leave its outcome unknown.
 */
export function abortable(target: ConfiguredRegistry, signal: AbortSignal | undefined): ConfiguredRegistry {
  if (!signal) return target
  const inner = target.client
  // A signal the caller passes as well still counts: either one aborts the call.
  const both = (own: AbortSignal | undefined) => (own ? AbortSignal.any([own, signal]) : signal)
  const cancellable: CancellableCalls = {
    catalog: (opts = {}) => inner.catalog({ ...opts, signal: both(opts.signal) }),
    tags: (repository, opts = {}) => inner.tags(repository, { ...opts, signal: both(opts.signal) }),
    headManifest: (repository, reference, opts = {}) =>
      inner.headManifest(repository, reference, { ...opts, signal: both(opts.signal) }),
    getManifest: (repository, reference, opts = {}) =>
      inner.getManifest(repository, reference, { ...opts, signal: both(opts.signal) }),
    getBlob: (repository, digest, opts = {}) =>
      inner.getBlob(repository, digest, { ...opts, signal: both(opts.signal) }),
    referrers: (repository, digest, opts = {}) =>
      inner.referrers(repository, digest, { ...opts, signal: both(opts.signal) }),
  }
  const client = new Proxy(inner, {
    get(object, property) {
      if (Object.hasOwn(cancellable, property)) return cancellable[property as keyof CancellableCalls]
      const value: unknown = Reflect.get(object, property)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        signal.throwIfAborted()
        return value.apply(object, args)
      }
    },
  })
  return { ...target, client }
}
