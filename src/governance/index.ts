export {
  type ApprovalEligibility,
  type ApprovalProgress,
  type ApprovalRequirement,
  type ApproverRole,
  approvalProgress,
  approvalsSatisfied,
  type GivenApproval,
  mayApprove,
  type PlanRepositorySummary,
  type PlanSummary,
  requiredApprovals,
} from './approvals.js'
export {
  type ApprovalRuleConfig,
  type ApprovalsConfig,
  type ApproverGroup,
  type GovernanceConfig,
  GovernanceConfigSchema,
  type InUseConfig,
  type InUseLevel,
  type ProtectionConfig,
  type TeamConfig,
} from './config-schema.js'
export {
  type CompiledPattern,
  compileGlob,
  compileTagPattern,
  globProblem,
  matchesGlob,
  matchesTagPattern,
  PatternError,
  type PatternKind,
  tagPatternProblem,
} from './globs.js'
export { mayRequest, type OwnedRepository, owningTeams, type RequestEligibility } from './ownership.js'
export {
  type InUsePolicy,
  inUsePolicy,
  type LegalHold,
  type ProtectionLevel,
  type ProtectionTarget,
  type ProtectionVerdict,
  protectionVerdict,
} from './protection.js'
