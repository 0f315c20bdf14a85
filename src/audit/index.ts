export { canonicalEventEncoding, canonicalJson, computeEventHash, type HashedFields } from './hash.js'
export {
  type AuditFilters,
  type AuditPage,
  DEFAULT_PAGE_SIZE,
  listAuditEvents,
  MAX_PAGE_SIZE,
  type PageRequest,
  streamAuditEvents,
} from './queries.js'
export {
  AUDIT_SCHEMA_VERSION,
  type AuditActor,
  type AuditEvent,
  type AuditInput,
  auditActor,
  GENESIS_HASH,
  type JsonObject,
  type JsonValue,
} from './types.js'
export { type VerifyOptions, type VerifyResult, verifyAuditChain } from './verify.js'
export { appendAuditEvent, appendAuditEvents, auditAlone } from './writer.js'
