import type { Target, Verb } from '../deletions/plan.js'

/** What a `/regent …` text asks for, parsed; or the usage line to show instead. */
export type Command =
  | { name: 'help' }
  | { name: 'registries' }
  | { name: 'tags'; registry: string; repository: string; pattern?: string }
  | {
      name: 'delete'
      registry: string
      verb: Verb
      targets: Target[]
      reason: string
      ticket?: string
      dryRun: boolean
    }
  | { name: 'status'; id: string }
  | { name: 'approve'; id: string }
  | { name: 'reject'; id: string; comment?: string }
  | { name: 'restore'; id: string }

export type Parsed = { ok: true; command: Command } | { ok: false; problem: string; usage: string }

export const USAGE: Record<Command['name'], string> = {
  help: '/regent help',
  registries: '/regent registries',
  tags: '/regent tags <registry> <repository> [pattern]',
  delete: '/regent delete <registry> <repository>:<tag>… --reason "why" [--ticket ID] [--untag] [--dry-run]',
  status: '/regent status <id>',
  approve: '/regent approve <id>',
  reject: '/regent reject <id> [comment]',
  restore: '/regent restore <id>',
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Splits on whitespace; a token that starts with a quote runs to the matching quote, spaces and
 * all. Slack clients often turn typed quotes into typographic ones (“ ” ‘ ’), so those count too.
 * A quote inside a word (`don't`) is just a character. An unclosed quote is a problem, not a
 * silently different reason.
 */
export function tokenize(text: string): string[] | { problem: string } {
  const tokens: string[] = []
  const closing: Record<string, string> = { '"': '"', "'": "'", '“': '”', '‘': '’', '”': '”' }
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (/\s/.test(ch)) {
      i++
      continue
    }
    const close = closing[ch]
    if (close) {
      const end = text.indexOf(close, i + 1)
      if (end < 0) return { problem: `the quote ${ch} is never closed` }
      tokens.push(text.slice(i + 1, end))
      i = end + 1
      continue
    }
    let token = ''
    while (i < text.length && !/\s/.test(text[i]!)) token += text[i++]
    tokens.push(token)
  }
  return tokens
}

function usage(name: Command['name'], problem: string): Parsed {
  return { ok: false, problem, usage: USAGE[name] }
}

export function parseCommand(text: string): Parsed {
  const tokens = tokenize(text.trim())
  if (!Array.isArray(tokens)) return { ok: false, problem: tokens.problem, usage: USAGE.help }
  const [verb, ...args] = tokens
  const name = (verb ?? 'help').toLowerCase()
  switch (name) {
    case 'help':
    case 'registries':
      if (args.length > 0) return usage(name, `${name} takes no arguments`)
      return { ok: true, command: { name } }
    case 'tags': {
      const [registry, repository, pattern, ...rest] = args
      if (!registry || !repository || rest.length > 0)
        return usage('tags', 'tags needs a registry and a repository')
      return { ok: true, command: { name, registry, repository, ...(pattern ? { pattern } : {}) } }
    }
    case 'delete':
      return parseDelete(args)
    case 'status':
    case 'approve':
    case 'restore': {
      const [id, ...rest] = args
      if (!id || rest.length > 0) return usage(name, `${name} needs exactly one request id`)
      if (!UUID.test(id)) return usage(name, `${id} is not a request id`)
      return { ok: true, command: { name, id: id.toLowerCase() } }
    }
    case 'reject': {
      const [id, ...comment] = args
      if (!id) return usage(name, 'reject needs a request id')
      if (!UUID.test(id)) return usage(name, `${id} is not a request id`)
      const text = comment.join(' ').trim()
      return { ok: true, command: { name, id: id.toLowerCase(), ...(text ? { comment: text } : {}) } }
    }
    default:
      return { ok: false, problem: `unknown command ${verb}`, usage: USAGE.help }
  }
}

function parseDelete(args: string[]): Parsed {
  let reason: string | undefined
  let ticket: string | undefined
  let dryRun = false
  let verb: Verb = 'delete-manifest'
  const positional: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--dry-run') dryRun = true
    else if (arg === '--untag') verb = 'untag'
    else if (arg === '--reason' || arg === '--ticket') {
      const value = args[++i]
      if (value === undefined || value.startsWith('--'))
        return usage('delete', `${arg} needs a value (quote it when it has spaces)`)
      if (arg === '--reason') reason = value
      else ticket = value
    } else if (arg.startsWith('--')) return usage('delete', `unknown option ${arg}`)
    else positional.push(arg)
  }
  const [registry, ...refs] = positional
  if (!registry || refs.length === 0)
    return usage('delete', 'delete needs a registry and at least one repository:tag')
  if (!reason?.trim()) return usage('delete', 'a deletion needs --reason "…"')
  const targets: Target[] = []
  for (const ref of refs) {
    const target = parseTarget(ref)
    if (!target) return usage('delete', `${ref} is not repository:tag or repository@digest`)
    targets.push(target)
  }
  return {
    ok: true,
    command: { name: 'delete', registry, verb, targets, reason, dryRun, ...(ticket ? { ticket } : {}) },
  }
}

/** `repo:tag` or `repo@sha256:…`; a repository name never holds `:` or `@`. */
function parseTarget(ref: string): Target | undefined {
  const at = ref.indexOf('@')
  if (at > 0) return { repository: ref.slice(0, at), digest: ref.slice(at + 1) }
  const colon = ref.lastIndexOf(':')
  if (colon <= 0 || colon === ref.length - 1) return undefined
  return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) }
}
