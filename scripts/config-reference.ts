/**
 * The configuration reference, docs/configuration.md, generated from the config schema so that it
 * cannot fall behind it:
 *
 *   npm run docs          writes docs/configuration.md
 *   npm run docs:check    exits 1 when the committed file differs from what the schema gives, or
 *                         when a key has no `description` (CI)
 *   npm run -s docs -- --missing   lists the keys whose schema has no `description`
 *
 * Meanings come from the schema's `description`s only: a key without one would get an empty cell
 * here, so the check refuses it, and the fix is a description in the schema, not text in this script.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Value } from 'typebox/value'
import { stringify as stringifyYaml } from 'yaml'
import {
  CONFIG_FILE_ENV,
  ConfigSchema,
  ENV_VARS,
  QUICK_REGISTRY_DEFAULT_NAME,
  QUICK_REGISTRY_ENV,
} from '../src/config.js'

export const REFERENCE_PATH = fileURLToPath(new URL('../docs/configuration.md', import.meta.url))

/** The parts of JSON Schema that TypeBox emits for the config. */
interface JsonSchema {
  type?: string
  description?: string
  default?: unknown
  const?: unknown
  anyOf?: JsonSchema[]
  properties?: Record<string, JsonSchema>
  patternProperties?: Record<string, JsonSchema>
  required?: string[]
  items?: JsonSchema
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  maxItems?: number
  minProperties?: number
  pattern?: string
}

interface Row {
  key: string
  type: string
  default: string
  meaning: string
  /** The environment variable that sets this key, if one does. */
  env?: string
  /** For a key that exists in some variants of a union only (`kind: command`, …). */
  variants: string[]
}

/**
 * The page that explains each top-level section. Navigation only: a section missing here is still
 * listed in full, just without the pointer.
 */
const SECTION_PAGES: Record<string, string> = {
  general: '[operations.md](operations.md)',
  auth: '[authentication.md](authentication.md)',
  database: '[operations.md](operations.md#your-own-postgresql)',
  embeddedPostgres: '[operations.md](operations.md#the-embedded-database)',
  registries:
    '[browsing.md](browsing.md#configuring-registries); `gc` in [gc.md](gc.md), `events` in [registry-events.md](registry-events.md)',
  browse: '[browsing.md](browsing.md)',
  graphql: '[browsing.md](browsing.md#graphql-limits)',
  publicRoutes: '[authentication.md](authentication.md#routes-without-a-token)',
  governance: '[governance.md](governance.md)',
  jobs: '[execution.md](execution.md)',
  deletions: '[deletions.md](deletions.md#execution-the-approved-plan-is-a-contract)',
  retention: '[retention.md](retention.md)',
  chatops: '[chatops.md](chatops.md)',
  notifications: '[notifications.md](notifications.md)',
  ui: '[console.md](console.md)',
  usage: '[usage.md](usage.md)',
  housekeeping: '[operations.md](operations.md#housekeeping)',
}

/**
 * The variables that set no config key, so the schema cannot describe them. The only prose this
 * script owns besides the page's frame.
 */
const OTHER_VARIABLES: { name: string; key: string; meaning: string }[] = [
  { name: CONFIG_FILE_ENV, key: '–', meaning: 'Path of the YAML config file.' },
  {
    name: QUICK_REGISTRY_ENV.url,
    key: '`registries[]`',
    meaning: `One registry without a config file (e.g. \`http://127.0.0.1:5000\`), added to the file's \`registries\`.`,
  },
  {
    name: QUICK_REGISTRY_ENV.name,
    key: '`registries[].name`',
    meaning: `The name of that registry (default \`${QUICK_REGISTRY_DEFAULT_NAME}\`; only with \`${QUICK_REGISTRY_ENV.url}\`).`,
  },
]

const code = (text: string): string => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``)

/** `|` would end a table cell, even inside a code span. */
const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ')

function variantsOf(schema: JsonSchema): JsonSchema[] {
  return schema.anyOf ? schema.anyOf.flatMap(variantsOf) : [schema]
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return code(value)
  if (Array.isArray(value)) return code(`[${value.map((v) => JSON.stringify(v)).join(', ')}]`)
  return code(JSON.stringify(value))
}

function range(min: number | undefined, max: number | undefined, unit = ''): string {
  if (min !== undefined && max !== undefined) return `${min}–${max}${unit}`
  if (min !== undefined) return `≥ ${min}${unit}`
  if (max !== undefined) return `≤ ${max}${unit}`
  return ''
}

/** A count in words: `at least 1`, `at most 10`, `1–256`. */
function count(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `${min}–${max}`
  if (min !== undefined) return `at least ${min}`
  if (max !== undefined) return `at most ${max}`
  return ''
}

/** One union member or plain schema in words: `integer ≥ 1`, `string matching …`, `` `all` ``. */
function describeOne(schema: JsonSchema): string {
  if (schema.const !== undefined) return formatValue(schema.const)
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const r = range(schema.minimum, schema.maximum)
      return r ? `${schema.type} ${r}` : schema.type
    }
    case 'string': {
      const pattern = schema.pattern ? ` matching ${code(schema.pattern)}` : ''
      const length = lengthOf(schema)
      return `string${pattern}${length ? `, ${length}` : ''}`
    }
    case 'array': {
      const items = schema.items ? describeItems(schema.items) : 'values'
      const n = count(schema.minItems, schema.maxItems)
      return n
        ? `list of ${items}, ${n} ${schema.minItems === 1 && schema.maxItems === undefined ? 'entry' : 'entries'}`
        : `list of ${items}`
    }
    case 'object': {
      if (schema.patternProperties) {
        const [pattern, value] = Object.entries(schema.patternProperties)[0] ?? []
        return `map of names matching ${code(pattern ?? '')} to ${value ? describeOne(value) : 'values'}`
      }
      return schema.minProperties ? `object, at least ${schema.minProperties} key` : 'object'
    }
    default:
      return schema.type ?? 'any'
  }
}

/** `not empty`, `at least 32 characters`, `1–200 characters`, or nothing. */
function lengthOf(schema: JsonSchema): string {
  if (schema.minLength === 1 && schema.maxLength === undefined) return 'not empty'
  const n = count(schema.minLength, schema.maxLength)
  return n ? `${n} characters` : ''
}

function describeItems(items: JsonSchema): string {
  const variants = variantsOf(items)
  if (variants.every((v) => v.const !== undefined)) return `any of ${variants.map(describeOne).join(', ')}`
  if (variants.length === 1 && items.type === 'object' && items.properties) return 'objects (below)'
  return variants
    .map((v) => {
      if (v.type !== 'string' || v.const !== undefined) return describeOne(v)
      const length = lengthOf(v)
      const pattern = v.pattern ? ` matching ${code(v.pattern)}` : ''
      if (length === 'not empty') return `non-empty strings${pattern}`
      return `strings${pattern}${length ? ` of ${length}` : ''}`
    })
    .join(' or ')
}

function describeType(schema: JsonSchema): string {
  const variants = variantsOf(schema)
  if (variants.length > 1 && variants.every((v) => v.const !== undefined))
    return `one of ${variants.map(describeOne).join(', ')}`
  const discriminator = discriminatorOf(variants)
  if (discriminator)
    return `object, by ${code(discriminator)}: ${variants.map((v) => describeOne(v.properties![discriminator]!)).join(', ')}`
  const parts = variants.map(describeOne)
  return parts.join(parts.some((p) => p.includes(',')) ? ', or ' : ' or ')
}

/** The property every object variant of a union pins to a constant (`kind`), if there is one. */
function discriminatorOf(variants: JsonSchema[]): string | undefined {
  if (variants.length < 2 || !variants.every((v) => v.type === 'object' && v.properties)) return undefined
  const first = variants[0]!.properties!
  return Object.keys(first).find((name) => variants.every((v) => v.properties?.[name]?.const !== undefined))
}

function defaultOf(schema: JsonSchema, required: boolean): string {
  if (schema.default === undefined) return required ? 'required' : ''
  const value = schema.default
  // A section's `{}` default only says the section may be left out; its keys show their own.
  if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)
    return ''
  return formatValue(value)
}

/** Every key under `schema`, depth first, as table rows; union members contribute their keys. */
function collectRows(
  schema: JsonSchema,
  prefix: string,
  rows: Map<string, Row>,
  envByKey: Map<string, string>,
) {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const key = prefix ? `${prefix}.${name}` : name
    const required = (schema.required ?? []).includes(name)
    const variants = variantsOf(child)
    const discriminator = discriminatorOf(variants)
    const notes = variants
      .filter((v) => v.description && v !== child)
      .map((v) =>
        discriminator ? `${describeOne(v.properties![discriminator]!)}: ${v.description}` : v.description,
      )
    const env = envByKey.get(key)
    const meaning = [child.description, ...notes]
      .filter((text): text is string => Boolean(text))
      .map((text) => (text.endsWith('.') ? text : `${text}.`))
      .join(' ')
    addRow(rows, {
      key,
      type: describeType(child),
      default: defaultOf(child, required),
      meaning,
      ...(env ? { env } : {}),
      variants: [],
    })

    for (const variant of variants) {
      const label = discriminator ? describeOne(variant.properties![discriminator]!) : undefined
      const inner = variant.type === 'array' ? variant.items : variant
      const suffix = variant.type === 'array' ? '[]' : ''
      for (const object of inner ? variantsOf(inner) : []) {
        if (object.type !== 'object' || !object.properties) continue
        const nested = new Map<string, Row>()
        collectRows(object, key + suffix, nested, envByKey)
        for (const row of nested.values()) {
          if (label && row.key !== `${key}.${discriminator}`) row.variants.push(label)
          addRow(rows, row)
        }
      }
    }
    // Each member pins the discriminator to its own value; the key takes any of them.
    const tag = discriminator ? rows.get(`${key}.${discriminator}`) : undefined
    if (tag) tag.type = describeType({ anyOf: variants.map((v) => v.properties![discriminator!]!) })
  }
}

/** A key several union members share is listed once, naming every member it belongs to. */
function addRow(rows: Map<string, Row>, row: Row) {
  const existing = rows.get(row.key)
  if (!existing) {
    rows.set(row.key, row)
    return
  }
  existing.variants.push(...row.variants.filter((v) => !existing.variants.includes(v)))
  if (!existing.meaning) existing.meaning = row.meaning
  if (existing.default !== row.default && row.default && row.default !== 'required')
    existing.default = existing.default ? `${existing.default} (${row.default})` : row.default
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

function sectionTable(rows: Row[]): string {
  return table(
    ['key', 'type and limits', 'default', 'meaning'],
    rows.map((r) => {
      const meaning = [
        r.variants.length ? `(${r.variants.join(', ')})` : '',
        r.meaning,
        r.env && !r.meaning.includes(r.env) ? `Also ${code(r.env)}.` : '',
      ]
      return [code(r.key), cell(r.type), cell(r.default), cell(meaning.filter(Boolean).join(' '))]
    }),
  )
}

function allRows(): Map<string, Row> {
  const envByKey = new Map(Object.entries(ENV_VARS).map(([name, key]) => [key as string, name]))
  const rows = new Map<string, Row>()
  collectRows(ConfigSchema as unknown as JsonSchema, '', rows, envByKey)
  return rows
}

/** The whole of docs/configuration.md. */
export function renderConfigReference(): string {
  const schema = ConfigSchema as unknown as JsonSchema
  const rows = [...allRows().values()]
  const topLevel = Object.entries(schema.properties ?? {})
  const scalars = topLevel
    .filter(([, s]) => !variantsOf(s).some((v) => v.type === 'object' || v.type === 'array'))
    .map(([name]) => name)
  const sections = [
    { id: 'general', title: 'General', keys: scalars },
    ...topLevel
      .filter(([name]) => !scalars.includes(name))
      .map(([name]) => ({ id: name, title: name, keys: [name] })),
  ]
  const rowsOf = (keys: string[]) =>
    rows.filter((r) =>
      keys.some((k) => r.key === k || r.key.startsWith(`${k}.`) || r.key.startsWith(`${k}[]`)),
    )

  const envRows = [
    ...Object.entries(ENV_VARS).map(([name, key]) => {
      const row = rows.find((r) => r.key === key)
      return [
        code(name),
        code(key),
        cell(row?.type ?? ''),
        cell(row?.default ?? ''),
        cell(row?.meaning ?? ''),
      ]
    }),
    ...OTHER_VARIABLES.map((v) => [code(v.name), v.key, 'string', '', cell(v.meaning)]),
  ]

  const defaults = Value.Default(schema as never, {}) as Record<string, unknown>

  const out = [
    '# Configuration reference',
    '',
    `Every environment variable and every key of the YAML config file, with its type, limits, default and meaning, one table per section. This page is generated from the config schema (\`src/config.ts\` and each feature's \`config-schema.ts\`) by \`npm run docs\`, and CI fails when it differs from what the schema gives (\`npm run docs:check\`): change the schema, then regenerate. [Back to the README](../README.md).`,
    '',
    '## How configuration is read',
    '',
    `Configuration comes from environment variables and an optional YAML file named by \`${CONFIG_FILE_ENV}\`. Both are validated at start against one schema (\`src/config.ts\`); environment variables win over the file. A wrong type, an unknown key or a missing required value stops the process with exit code 2 and one line per problem naming the key, e.g. \`port: must be integer (from env PORT)\` or \`registries[0].url: required value is missing (from /etc/regent.yaml)\`.`,
    '',
    'All keys are optional unless their default says `required`: then the key must be given whenever the section or list entry it belongs to is. `[]` marks the entries of a list; a key ending in `Ms` is in milliseconds.',
    '',
    '## Contents',
    '',
    '- [Environment variables](#environment-variables)',
    ...sections.map((s) => `- [${s.id === 'general' ? s.title : code(s.title)}](#${s.id.toLowerCase()})`),
    '- [Every default, as a config file](#every-default-as-a-config-file)',
    '',
    '## Environment variables',
    '',
    table(['variable', 'config key', 'type and limits', 'default', 'meaning'], envRows),
    '',
  ]
  for (const section of sections) {
    const page = SECTION_PAGES[section.id]
    out.push(
      `## ${section.id === 'general' ? section.title : code(section.title)}`,
      '',
      ...(page ? [`Explained in ${page}.`, ''] : []),
      sectionTable(rowsOf(section.keys)),
      '',
    )
  }
  out.push(
    '## Every default, as a config file',
    '',
    'What the schema fills in when nothing is configured (keys without a default are left out).',
    '',
    '```yaml',
    stringifyYaml(defaults).trimEnd(),
    '```',
    '',
  )
  return out.join('\n')
}

/** Keys whose schema carries no `description`, for whoever adds them to the schema. */
export function keysWithoutDescription(): string[] {
  const schema = ConfigSchema as unknown as JsonSchema
  const missing: string[] = []
  const walk = (node: JsonSchema, prefix: string) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const key = prefix ? `${prefix}.${name}` : name
      if (!child.description && !missing.includes(key)) missing.push(key)
      for (const variant of variantsOf(child)) {
        const inner = variant.type === 'array' ? variant.items : variant
        for (const object of inner ? variantsOf(inner) : [])
          walk(object, variant.type === 'array' ? `${key}[]` : key)
      }
    }
  }
  walk(schema, '')
  return missing
}

function main(args: string[]): number {
  const missing = keysWithoutDescription()
  if (args.includes('--missing')) {
    if (missing.length > 0) process.stdout.write(`${missing.join('\n')}\n`)
    return 0
  }
  const undescribed = () =>
    process.stderr.write(
      `config keys without a \`description\` in the schema (the reference leaves their meaning empty):\n${missing.map((key) => `  ${key}\n`).join('')}`,
    )
  const generated = renderConfigReference()
  if (args.includes('--check')) {
    let committed = ''
    try {
      committed = readFileSync(REFERENCE_PATH, 'utf8')
    } catch {}
    const current = committed === generated
    if (!current)
      process.stderr.write(
        'docs/configuration.md differs from what the config schema generates: run `npm run docs`\n',
      )
    if (missing.length > 0) undescribed()
    return current && missing.length === 0 ? 0 : 1
  }
  writeFileSync(REFERENCE_PATH, generated)
  if (missing.length > 0) undescribed()
  return 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = main(process.argv.slice(2))
