import { errors } from '../errors.js'
import { tagPatternProblem } from '../governance/globs.js'
import { validated } from '../lib/validate.js'
import { targetProblem } from './plan.js'
import { CancelSchema, CreateDeletionSchema, DecisionSchema } from './schemas.js'
import type { CreateDeletionInput } from './service.js'

/**
 * The deletion service's input checks, for every adapter: the REST schemas (so GraphQL and Slack
 * meet the same limits and get the same REGENT_VALIDATION), then what a schema cannot say.
 */

/** A request's input as REST would accept it; fields only Regent itself sets are kept as given. */
export function creationInput(input: CreateDeletionInput): CreateDeletionInput {
  const { requireApproval, ...body } = input
  const checked = validated(CreateDeletionSchema, body) as CreateDeletionInput
  checked.targets.forEach((target, index) => {
    // A pattern that does not compile is the caller's mistake, named with the pattern.
    const patternProblem = target.tagPattern === undefined ? undefined : tagPatternProblem(target.tagPattern)
    if (patternProblem)
      throw new errors.VALIDATION(
        `input.targets.${index}.tagPattern ${JSON.stringify(target.tagPattern)} is not a tag pattern: ${patternProblem}`,
      )
    const problem = targetProblem(target, checked.verb)
    if (problem) throw new errors.VALIDATION(problem)
  })
  return requireApproval === undefined ? checked : { ...checked, requireApproval }
}

export function decisionInput<T>(input: T): T {
  return validated(DecisionSchema, input) as T
}

export function cancelReason(reason: string | undefined): string | undefined {
  return validated(CancelSchema, reason === undefined ? {} : { reason }).reason
}
