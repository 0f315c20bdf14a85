export { type HousekeepingConfig, HousekeepingConfigSchema } from './config-schema.js'
export { default as housekeepingPlugin } from './plugin.js'
export { HOUSEKEEPING_PURGE, Housekeeping, type PurgeCounts } from './service.js'
