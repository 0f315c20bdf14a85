/**
 * Legal holds: time-boxed rules that override every policy. Deletions read the active ones (and
 * take the holds lock while they commit their markers); admins place and lift them.
 */

export { HoldsService, type HoldView, type PlaceHoldInput, PlaceHoldSchema } from './service.js'
export { activeHolds, lockHoldsForReading } from './sql.js'
