import type { Plan } from '../deletions/plan.js'
import type { DeletionView } from '../deletions/service.js'
import { USAGE } from './commands.js'

/**
 * Block Kit answers (https://api.slack.com/block-kit). Every message also carries `text`, which
 * Slack shows in notifications and clients without blocks. Lists are cut: Slack refuses a section
 * over 3000 characters and a message over 50 blocks.
 */

export interface SlackMessage {
  response_type?: 'ephemeral' | 'in_channel'
  replace_original?: boolean
  text: string
  blocks?: Block[]
}

type Block = Record<string, unknown>

/** Lines shown before "… and N more". */
export const LIST_LIMIT = 10
const SECTION_CHARS = 2900

/** The approve/reject buttons' value: the request and the plan the clicker saw. */
export function buttonValue(id: string, planHash: string): string {
  return `${id}:${planHash}`
}

export function parseButtonValue(value: string): { id: string; planHash: string } | undefined {
  const match = /^([0-9a-f-]{36}):([0-9a-f]{64})$/.exec(value)
  return match ? { id: match[1]!, planHash: match[2]! } : undefined
}

export function cutList(lines: string[], limit = LIST_LIMIT): string[] {
  if (lines.length <= limit) return lines
  return [...lines.slice(0, limit), `… and ${lines.length - limit} more`]
}

const section = (text: string): Block => ({
  type: 'section',
  text: { type: 'mrkdwn', text: text.length > SECTION_CHARS ? `${text.slice(0, SECTION_CHARS)}…` : text },
})
const context = (text: string): Block => ({ type: 'context', elements: [{ type: 'mrkdwn', text }] })

/** Slack's mrkdwn treats &, < and > as markup: names from registries are escaped. */
export function mrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

export function ephemeral(text: string, blocks?: Block[]): SlackMessage {
  return { response_type: 'ephemeral', text, ...(blocks ? { blocks } : {}) }
}

export function helpMessage(): SlackMessage {
  const lines = [
    '*Regent* — browse registries and request governed deletions.',
    `\`${USAGE.registries}\` — the configured registries and their health`,
    `\`${USAGE.tags}\` — tags and digests (pattern: a glob like \`pr-*\`)`,
    `\`${USAGE.delete}\` — request a deletion. \`repo:tag\` deletes the *manifest* the tag points to, so every tag sharing that digest vanishes too (the plan lists them); \`--untag\` removes only the named tags. \`--dry-run\` shows the plan without creating anything.`,
    `\`${USAGE.status}\` — a request's state and plan`,
    `\`${USAGE.approve}\` / \`${USAGE.reject}\` — decide on a request (or use its buttons)`,
    `\`${USAGE.restore}\` — put a deletion back, until the registry's next garbage collection`,
  ]
  return ephemeral('Regent commands', [section(lines.join('\n'))])
}

export function usageMessage(problem: string, usage: string): SlackMessage {
  return ephemeral(`${problem}. Usage: ${usage}`, [
    section(`:warning: ${mrkdwn(problem)}.\nUsage: \`${usage}\``),
    context('`/regent help` lists every command'),
  ])
}

export function errorMessage(code: string, message: string): SlackMessage {
  return ephemeral(`${message} (${code})`, [section(`:no_entry: ${mrkdwn(message)}`), context(`\`${code}\``)])
}

export function workingMessage(what: string): SlackMessage {
  return ephemeral(`Working on it: ${what}…`, [
    section(`:hourglass_flowing_sand: Working on it: ${mrkdwn(what)}…`),
  ])
}

export function unmappedMessage(slackUserId: string): SlackMessage {
  return ephemeral(
    `Your Slack account (${slackUserId}) is not linked to a Regent user, so Regent cannot act for you.`,
    [
      section(
        `:lock: Your Slack account (\`${mrkdwn(slackUserId)}\`) is not linked to a Regent user, so Regent cannot act for you. Ask a Regent admin to add you to \`chatops.slack.users\`.`,
      ),
    ],
  )
}

export function registriesMessage(
  registries: {
    name: string
    kind: string
    health: string
    capabilities: { deleteEnabled: boolean | null } | null
  }[],
): SlackMessage {
  if (registries.length === 0) return ephemeral('No registries are configured.')
  const lines = registries.map(
    (r) =>
      `• *${mrkdwn(r.name)}* (${r.kind}) — ${r.health}${r.capabilities?.deleteEnabled === false ? ', deletes disabled' : ''}`,
  )
  return ephemeral(`${registries.length} registries`, [section(cutList(lines).join('\n'))])
}

export function tagsMessage(
  registry: string,
  repository: string,
  tags: { name: string; digest: string; size?: number | undefined }[],
  options: { pattern?: string; incomplete: boolean },
): SlackMessage {
  const where = `${mrkdwn(registry)}/${mrkdwn(repository)}`
  const matching = options.pattern ? ` matching \`${mrkdwn(options.pattern)}\`` : ''
  if (tags.length === 0) return ephemeral(`No tags${matching} in ${registry}/${repository}.`)
  const lines = tags.map(
    (t) =>
      `• \`${mrkdwn(t.name)}\` ${shortDigest(t.digest)}${t.size === undefined ? '' : `, ${formatBytes(t.size)}`}`,
  )
  const blocks = [section(`*${tags.length} tag(s)${matching} in ${where}*\n${cutList(lines).join('\n')}`)]
  if (options.incomplete)
    blocks.push(
      context('The repository has more tags than one answer lists; use the REST API to page through them.'),
    )
  return ephemeral(`${tags.length} tag(s) in ${registry}/${repository}`, blocks)
}

/** The plan as chat reads it: what goes, which tags vanish with which digest, bytes, approvals. */
function planBlocks(plan: Plan): Block[] {
  // In-use items first: they are what an approver most needs to see within the cut list.
  const ordered = [...plan.items.filter((i) => i.inUse), ...plan.items.filter((i) => !i.inUse)]
  const vanishing = ordered.map((item) => {
    const what =
      item.vanishingTags.length > 0
        ? `• \`${mrkdwn(item.repository)}\`: ${item.vanishingTags.map((t) => `\`${mrkdwn(t)}\``).join(', ')} with ${shortDigest(item.digest)}`
        : `• \`${mrkdwn(item.repository)}\` ${shortDigest(item.digest)} (${item.action})`
    return item.inUse
      ? `${what} :warning: ${item.inUse.status === 'unknown' ? '' : 'in use: '}${mrkdwn(item.inUse.reason)}`
      : what
  })
  const tagCount = plan.items.reduce((n, item) => n + item.vanishingTags.length, 0)
  const approvals =
    plan.approvals.count === 0
      ? 'no approval needed'
      : `${plan.approvals.count} approval(s) needed from ${plan.approvals.from.join(' or ')}`
  const blocks: Block[] = [
    section(
      [
        `*${plan.verb}* in *${mrkdwn(plan.registry)}*: ${plan.items.length} item(s), ${tagCount} tag(s) vanish, ~${formatBytes(plan.bytesFreed)} freed after GC, ${approvals}`,
        ...cutList(vanishing),
      ].join('\n'),
    ),
  ]
  if (plan.problems.length > 0)
    blocks.push(
      section(
        cutList(plan.problems.map((p) => `:no_entry: ${mrkdwn(p.message)} (\`${p.code}\`)`)).join('\n'),
      ),
    )
  if (plan.warnings.length > 0) blocks.push(context(cutList(plan.warnings.map(escape), 3).join(' · ')))
  return blocks
}

export function dryRunMessage(plan: Plan): SlackMessage {
  const refused = plan.problems.length > 0 ? ' — would be refused' : ''
  return ephemeral(`Dry run: ${plan.items.length} item(s), ~${formatBytes(plan.bytesFreed)}${refused}`, [
    section(`:mag: *Dry run* — nothing was created${refused}`),
    ...planBlocks(plan),
  ])
}

/**
 * A request as a message. While it awaits approval it carries the buttons, bound to this plan's
 * hash: a click approves exactly the plan shown, never one that changed since.
 */
export function deletionMessage(view: DeletionView, responseType: 'ephemeral' | 'in_channel'): SlackMessage {
  const blocks: Block[] = [
    section(
      `*${mrkdwn(view.summary)}*\nReason: ${mrkdwn(view.reason)}${view.ticket ? ` · Ticket: ${mrkdwn(view.ticket)}` : ''}`,
    ),
    // The summary view carries no items: its one-line summary already counts them.
    ...(view.view === 'summary' ? [] : planBlocks(view.plan)),
  ]
  const given = view.approvals.given.map(
    (a) => `${a.decision === 'approve' ? 'approved' : 'rejected'} by ${mrkdwn(a.approver)}`,
  )
  blocks.push(context(`Request \`${view.id}\`${given.length > 0 ? ` · ${given.join(', ')}` : ''}`))
  if (view.state === 'awaiting_approval') {
    const value = buttonValue(view.id, view.planHash)
    blocks.push({
      type: 'actions',
      block_id: `deletion:${view.id}`,
      elements: [
        {
          type: 'button',
          action_id: 'approve',
          text: { type: 'plain_text', text: 'Approve' },
          style: 'primary',
          value,
        },
        {
          type: 'button',
          action_id: 'reject',
          text: { type: 'plain_text', text: 'Reject' },
          style: 'danger',
          value,
        },
      ],
    })
  }
  return { response_type: responseType, text: view.summary, blocks }
}

function shortDigest(digest: string): string {
  return `\`${mrkdwn(digest.slice(0, 19))}\``
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
}
