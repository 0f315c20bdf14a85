/**
 * A 5-field cron matcher (minute hour day-of-month month day-of-week), evaluated in UTC, with the
 * usual grammar: `*`, numbers, ranges `a-b`, steps (`a-b/n`, `a/n`, and `*` followed by `/n`),
 * lists `a,b`, month and weekday names (`jan`, `mon`), 0 or 7 for Sunday, and the macros
 * `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. As in Vixie cron, when both day fields
 * are restricted (neither starts with `*`) a day matching either one matches.
 */

export interface Cron {
  source: string
  /** Whether the minute containing `date` is a slot of this schedule. */
  matches(date: Date): boolean
}

const MACROS: Record<string, string> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']

interface FieldSpec {
  name: string
  min: number
  max: number
  names?: string[]
  /** Offset of names[0] (months start at 1). */
  nameBase?: number
}

const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, nameBase: 0 },
]

export class CronError extends Error {
  constructor(source: string, reason: string) {
    super(`invalid cron expression ${JSON.stringify(source)}: ${reason}`)
    this.name = 'CronError'
  }
}

export function parseCron(source: string): Cron {
  const expanded = MACROS[source.trim().toLowerCase()] ?? source
  const parts = expanded.trim().split(/\s+/)
  if (parts.length !== 5) throw new CronError(source, `expected 5 fields, got ${parts.length}`)
  const sets = parts.map((part, i) => parseField(source, part, FIELDS[i]!))
  const [minutes, hours, doms, months, dows] = sets as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ]
  if (dows.has(7)) dows.add(0)
  const domRestricted = !parts[2]!.startsWith('*')
  const dowRestricted = !parts[4]!.startsWith('*')
  return {
    source,
    matches(date: Date): boolean {
      if (!minutes.has(date.getUTCMinutes()) || !hours.has(date.getUTCHours())) return false
      if (!months.has(date.getUTCMonth() + 1)) return false
      const dom = doms.has(date.getUTCDate())
      const dow = dows.has(date.getUTCDay())
      if (domRestricted && dowRestricted) return dom || dow
      return dom && dow
    },
  }
}

function parseField(source: string, text: string, spec: FieldSpec): Set<number> {
  const out = new Set<number>()
  for (const item of text.split(',')) {
    const match = /^([^/]+)(?:\/(\d+))?$/.exec(item)
    if (!match) throw new CronError(source, `bad ${spec.name} item ${JSON.stringify(item)}`)
    const [, range, stepText] = match
    const step = stepText === undefined ? 1 : Number(stepText)
    if (!Number.isInteger(step) || step < 1) throw new CronError(source, `bad step in ${spec.name}`)
    let from: number
    let to: number
    if (range === '*') {
      from = spec.min
      to = spec.max === 7 ? 6 : spec.max
    } else {
      const bounds = range!.split('-')
      if (bounds.length > 2) throw new CronError(source, `bad ${spec.name} range ${JSON.stringify(range)}`)
      from = value(source, bounds[0]!, spec)
      // `a/n` means from a to the end, stepping by n.
      to = bounds.length === 2 ? value(source, bounds[1]!, spec) : stepText !== undefined ? spec.max : from
      if (to < from) throw new CronError(source, `${spec.name} range ${range} runs backwards`)
    }
    for (let v = from; v <= to; v += step) out.add(v)
  }
  return out
}

function value(source: string, text: string, spec: FieldSpec): number {
  const named = spec.names?.indexOf(text.toLowerCase()) ?? -1
  const n = named >= 0 ? named + (spec.nameBase ?? 0) : /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isInteger(n) || n < spec.min || n > spec.max) {
    throw new CronError(source, `${spec.name} ${JSON.stringify(text)} is not in ${spec.min}-${spec.max}`)
  }
  return n
}
