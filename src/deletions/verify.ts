import { type GovernanceConfig, type LegalHold, protectionVerdict } from '../governance/index.js'
import type { ItemResult, ItemRow } from './items-sql.js'
import { placeholderFor } from './placeholder.js'
import type { Plan } from './plan.js'
import { indexesUsing, type RepositoryState, tagsOf } from './repository-state.js'

/**
 * The approved plan is a contract. Just before a wave of DELETEs, each item is judged against a
 * fresh look at its repository: what would its DELETE remove now? Only if that stays within what
 * was approved is it sent; otherwise the item ends with the reason and is left alone. These
 * functions decide; they call nothing.
 */

/** Send it: `vanishing` is every tag the DELETE removes now, all of them approved. */
export type Judgement =
  | { send: true; vanishing: string[]; placeholder?: string }
  | { send: false; result: ItemResult }

export function planChanged(error: string): ItemResult {
  return { state: 'skipped', outcome: 'plan_changed', errorCode: 'REGENT_PLAN_CHANGED', error }
}

export const ALREADY_DELETED: ItemResult = { state: 'deleted', outcome: 'already_deleted' }

/** Whether the item removes a tag that resolves to nothing (its digest is then our placeholder). */
export function isDanglingItem(item: ItemRow): boolean {
  return (
    item.action === 'untag' &&
    item.tag !== null &&
    item.digest === placeholderFor(item.repository, item.tag, 'dangling', item.media_type).digest
  )
}

/** The placeholder an untag by placeholder pushes onto the item's tag (the same on every attempt). */
export function placeholderOf(item: ItemRow) {
  return placeholderFor(
    item.repository,
    item.tag!,
    isDanglingItem(item) ? 'dangling' : item.digest,
    item.media_type,
  )
}

/** What the registry shows now against what was approved, for one item. */
export function judge(item: ItemRow, state: RepositoryState): Judgement {
  return item.action === 'untag' ? judgeUntag(item, state) : judgeDigestDelete(item, state)
}

function judgeUntag(item: ItemRow, state: RepositoryState): Judgement {
  const tag = item.tag!
  const sentBefore = item.delete_sent_at !== null
  const placeholder = item.untag_method === 'placeholder' ? placeholderOf(item).digest : undefined
  const head = state.snapshot.tags.get(tag)
  const dangling = isDanglingItem(item)
  if (head && (head.digest === placeholder || (!dangling && head.digest === item.digest))) {
    return { send: true, vanishing: [tag], ...(placeholder ? { placeholder } : {}) }
  }
  if (!head && state.snapshot.dangling.includes(tag)) {
    if (dangling) return { send: true, vanishing: [tag], ...(placeholder ? { placeholder } : {}) }
    return {
      send: false,
      result: {
        state: 'failed',
        outcome: 'dangling',
        errorCode: 'REGENT_DANGLING_TAG',
        error: `${item.repository}:${tag} is listed but resolves to nothing; untag it again to remove it`,
      },
    }
  }
  if (sentBefore) return { send: false, result: ALREADY_DELETED }
  return {
    send: false,
    result: head
      ? {
          state: 'skipped',
          outcome: 'tag_moved',
          error: `${item.repository}:${tag} now points at ${head.digest}`,
        }
      : { state: 'skipped', outcome: 'tag_gone', error: `${item.repository}:${tag} no longer exists` },
  }
}

function judgeDigestDelete(item: ItemRow, state: RepositoryState): Judgement {
  const sentBefore = item.delete_sent_at !== null
  const current = tagsOf(state, item.digest)
  if (item.tag !== null && item.action === 'delete-manifest' && !current.includes(item.tag) && !sentBefore) {
    // The tag the request named no longer points here: the image it named is not there any more.
    const now = state.snapshot.tags.get(item.tag)
    return {
      send: false,
      result: now
        ? {
            state: 'skipped',
            outcome: 'tag_moved',
            error: `${item.repository}:${item.tag} now points at ${now.digest}`,
          }
        : { state: 'skipped', outcome: 'tag_gone', error: `${item.repository}:${item.tag} no longer exists` },
    }
  }
  // After a DELETE of ours was sent (its answer lost), sending it again is how to tell: 404 means
  // the first one went through.
  const added = current.filter((tag) => !item.vanishing_tags.includes(tag))
  if (added.length > 0) {
    return {
      send: false,
      result: planChanged(
        `${item.repository}@${item.digest} now also carries ${added.join(', ')} (not in the approved plan); deleting it would remove ${added.length === 1 ? 'that tag' : 'those tags'} too`,
      ),
    }
  }
  const users = indexesUsing(state, item.digest)
  if (users.length > 0) {
    const described = users.map((u) => `${u.digest}${u.tags.length > 0 ? ` (${u.tags.join(', ')})` : ''}`)
    return {
      send: false,
      result: planChanged(
        `${item.repository}@${item.digest} is now used by index ${described.join('; ')}; deleting it would break that index`,
      ),
    }
  }
  return { send: true, vanishing: current }
}

/**
 * Protections and legal holds judged again on what an item's DELETE removes now, with the current
 * configuration and holds. Read inside the transaction that writes the "DELETE sent" markers (after
 * the holds lock), so a hold committed before the marker always wins. An item the approval already
 * covered as admin-only stays sendable; anything stronger than what was approved stops it.
 */
export function protectionChange(
  governance: GovernanceConfig,
  holds: LegalHold[],
  registry: string,
  item: ItemRow,
  vanishing: string[],
  approvedAdminOnly: boolean,
  now: Date,
): ItemResult | undefined {
  for (const tag of vanishing.length > 0 ? vanishing : [undefined]) {
    const verdict = protectionVerdict(
      governance,
      holds,
      { registry, repository: item.repository, ...(tag ? { tag } : {}), digest: item.digest },
      now,
    )
    const where = `${item.repository}${tag ? `:${tag}` : `@${item.digest}`}`
    if (verdict.level === 'held') return planChanged(`${where} is now under ${verdict.rule}`)
    if (verdict.level === 'immutable') return planChanged(`${where} is now immutable (${verdict.rule})`)
    if (verdict.level === 'admin-only' && !approvedAdminOnly)
      return planChanged(`${where} is now admin-only (${verdict.rule}) and no admin approved this request`)
  }
  return undefined
}

/**
 * Why a stored plan could not run under today's legal holds and protections: approving it is then
 * refused with the reason, instead of approving something execution would stop anyway.
 */
export function blockedNow(
  plan: Plan,
  governance: GovernanceConfig,
  holds: LegalHold[],
  now: Date,
): { code: 'REGENT_HELD' | 'REGENT_PROTECTED'; message: string } | undefined {
  for (const item of plan.items) {
    for (const tag of item.vanishingTags.length > 0 ? item.vanishingTags : [undefined]) {
      const verdict = protectionVerdict(
        governance,
        holds,
        {
          registry: plan.registry,
          repository: item.repository,
          ...(tag ? { tag } : {}),
          digest: item.digest,
        },
        now,
      )
      const where = `${item.repository}${tag ? `:${tag}` : `@${item.digest}`}`
      if (verdict.level === 'held')
        return {
          code: 'REGENT_HELD',
          message: `${where} is now under ${verdict.rule}; it cannot be approved until the hold ends`,
        }
      if (verdict.level === 'immutable')
        return { code: 'REGENT_PROTECTED', message: `${where} is now immutable (${verdict.rule})` }
    }
  }
  return undefined
}
