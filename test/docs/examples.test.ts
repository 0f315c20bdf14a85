import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { ConfigError, loadConfig } from '../../src/config.js'

/**
 * The documentation's examples and links are checked like code: every YAML example parses with
 * unique keys and, unless it says it is not a Regent config, is a valid config (a fragment such as
 * one `registries:` entry is checked as a whole config placed at the root); every relative link
 * points at a file, and at a heading of it, that exists.
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
const NOT_A_CONFIG = /^#\s*not a Regent config\b/

const documents = [
  'README.md',
  'deploy/kubernetes/README.md',
  ...readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
]

interface Block {
  file: string
  line: number
  lang: string
  text: string
}

/** The fenced code blocks of a Markdown file, and its text with those blocks blanked out. */
function split(file: string): { blocks: Block[]; prose: string } {
  const lines = readFileSync(path.join(root, file), 'utf8').split('\n')
  const blocks: Block[] = []
  const prose: string[] = []
  let open: { fence: string; lang: string; line: number; body: string[] } | undefined
  lines.forEach((line, index) => {
    const fence = /^\s*(`{3,}|~{3,})\s*([^\s`]*)/.exec(line)
    if (!open && fence) {
      open = { fence: fence[1]!, lang: fence[2]!.toLowerCase(), line: index + 1, body: [] }
      prose.push('')
    } else if (
      open &&
      line.trim().startsWith(open.fence) &&
      line.trim().replaceAll(open.fence[0]!, '') === ''
    ) {
      blocks.push({ file, line: open.line, lang: open.lang, text: open.body.join('\n') })
      open = undefined
      prose.push('')
    } else if (open) {
      open.body.push(line)
      prose.push('')
    } else {
      prose.push(line)
    }
  })
  return { blocks, prose: prose.join('\n') }
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>()
  const anchors = new Set<string>()
  for (const line of split(file).prose.split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!heading) continue
    const slug = heading[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return anchors
}

t.test('every YAML example parses with unique keys and is a valid config', async (t) => {
  const yamlBlocks = documents.flatMap((file) => split(file).blocks).filter((b) => /^ya?ml$/.test(b.lang))
  let validated = 0
  for (const block of yamlBlocks) {
    const where = `${block.file}:${block.line}`
    let parsed: unknown
    try {
      parsed = parseYaml(block.text, { uniqueKeys: true })
    } catch (err) {
      t.fail(`${where}: ${(err as Error).message.split('\n')[0]}`)
      continue
    }
    if (NOT_A_CONFIG.test(block.text.trimStart())) continue
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      t.fail(`${where}: a config example must be a mapping (or start with "# not a Regent config")`)
      continue
    }
    let problems: string[] = []
    try {
      loadConfig({}, parsed as Record<string, unknown>)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      problems = err.problems
    }
    t.same(problems, [], `${where} is a valid config`)
    validated++
  }
  // A broken fence parser would find nothing and pass: the docs hold well over this many.
  t.ok(validated >= 20, `${validated} config examples validated`)
})

t.test('every relative link points at a file and heading that exist', async (t) => {
  let checked = 0
  for (const file of documents) {
    // Code spans may hold bracketed text that is not a link.
    const prose = split(file).prose.replace(/(`+)[\s\S]*?\1/g, '')
    for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // http:, https:, mailto:
      const [pathPart, anchor] = target.split('#') as [string, string | undefined]
      const resolved = pathPart
        ? path.join(path.dirname(path.join(root, file)), pathPart)
        : path.join(root, file)
      checked++
      if (!existsSync(resolved)) {
        t.fail(`${file}: ${target} points at a file that does not exist`)
        continue
      }
      if (anchor === undefined) continue
      if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) {
        t.fail(`${file}: ${target} has an anchor on something that is not a Markdown file`)
        continue
      }
      const anchors = anchorsOf(path.relative(root, resolved))
      t.ok(anchors.has(anchor), `${file}: ${target} points at a heading that exists`)
    }
  }
  t.ok(checked >= 100, `${checked} links checked`)
})

t.test('every docs page starts with its summary and links back to the README', async (t) => {
  for (const file of documents.filter((f) => f.startsWith('docs/'))) {
    const prose = split(file).prose.trimStart()
    const [title, summary] = prose.split(/\n\s*\n/)
    t.match(title, /^# \S/, `${file} starts with its title`)
    t.ok(summary && !summary.startsWith('#') && !summary.startsWith('|'), `${file} has a summary paragraph`)
    t.match(prose, /\]\(\.\.\/README\.md\)/, `${file} links back to the README`)
  }
})
