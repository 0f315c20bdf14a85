/**
 * In-use awareness, for other features: `app.usage.usageOf(registry, repository, candidates)` gives
 * a verdict per digest, `app.usage.countsAsInUse(verdict)` applies `usage.unknownCountsAsInUse`,
 * `app.usage.describe(verdict)` says it in one line, and `inUsePolicy` (src/governance) says what
 * governance makes of it.
 */
export { type UsageConfig, UsageConfigSchema } from './config-schema.js'
export { usageErrors } from './errors.js'
export { usageGraphql } from './graphql.js'
export { parseImageId, parseImageReference, RegistryHosts } from './image-reference.js'
export { usageRoutes } from './routes.js'
export { type SourceView, type SyncResult, USAGE_SYNC, UsageService } from './service.js'
export {
  describeLocation,
  describeUsage,
  type UsageCandidate,
  type UsageLocation,
  type UsageLookup,
  type UsageStatus,
  type UsageVerdict,
} from './verdict.js'
