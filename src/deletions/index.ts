/**
 * What other features may use of deletions besides `app.deletions`: the job kind that executes
 * them, the gate through which another feature has a say in execution and restore, and the restore
 * window a garbage collection closes.
 */
export { EXECUTE_DELETION } from './execute.js'
export type { DeletionGate } from './gates.js'
export { closeRestoreWindow, newestRestorableDeletion } from './items-sql.js'
