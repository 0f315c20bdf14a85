/**
 * Patterns in governance rules: doublestar globs for registries and repositories, and globs or
 * `/regex/` for tags. Every pattern matches the whole input.
 *
 * Both kinds compile to one small automaton (a Thompson NFA run as a lazily built DFA, the way RE2
 * does it), so a match takes time linear in the input whatever the pattern. JavaScript's RegExp
 * backtracks: refusing backreferences and lookarounds is not enough there, since `(a+)+$` is
 * exponential and `.*.*.*.*x` high-polynomial. Patterns come from the config today and may come from
 * API callers later; none of them may stall the event loop.
 *
 * Globs: `*` any run of characters except `/`; `?` one character except `/`; `**` as a whole path
 * segment any number of segments, including none: `a/**` matches `a` and `a/b/c`, a leading `**`
 * segment then `/api` matches `api` and `x/y/api` (`a**b` is just `a*b`); `[abc]`, `[a-z]`, `[!a]`
 * one character (never `/`); `{x,y}` either alternative; `\` escapes the next character.
 * Everything else is literal.
 *
 * Regexes (`/…/`, tags only): literals, `.`, classes `[…]`, `\d \w \s` and their negations,
 * groups `(…)`, `(?:…)`, `(?<name>…)`, alternation, `* + ? {n} {n,} {n,m}` (lazy forms accepted,
 * repeats up to 1000), `^` and `$`. Refused with a clear message: backreferences, lookarounds, word
 * boundaries, flags, Unicode property escapes.
 */

export class PatternError extends Error {
  constructor(
    readonly pattern: string,
    readonly problem: string,
  ) {
    super(`invalid pattern ${JSON.stringify(pattern)}: ${problem}`)
    this.name = 'PatternError'
  }
}

export type PatternKind = 'glob' | 'regex'

export interface CompiledPattern {
  readonly source: string
  readonly kind: PatternKind
  test(input: string): boolean
}

export const MAX_PATTERN_LENGTH = 1000
const MAX_REPEAT = 1000
const MAX_NFA_STATES = 20_000
const MAX_CACHED_DFA_STATES = 5_000

/** A doublestar glob (registries and repositories). Throws PatternError. */
export function compileGlob(pattern: string): CompiledPattern {
  checkLength(pattern)
  return new Automaton(pattern, 'glob', new GlobParser(pattern).parse())
}

/** A tag pattern: `/regex/` (anchored, RE2 subset) or else a glob. Throws PatternError. */
export function compileTagPattern(pattern: string): CompiledPattern {
  checkLength(pattern)
  if (!pattern.startsWith('/')) return compileGlob(pattern)
  // Tags cannot contain `/`, so a pattern starting with one can only be meant as a regex.
  if (pattern.length < 2 || !pattern.endsWith('/')) {
    throw new PatternError(pattern, 'a regex is written /…/ and takes no flags')
  }
  return new Automaton(pattern, 'regex', new RegexParser(pattern, pattern.slice(1, -1)).parse())
}

/** The problem with a glob, or undefined when it compiles (for config validation). */
export function globProblem(pattern: string): string | undefined {
  return problemOf(() => compileGlob(pattern))
}

/** The problem with a tag pattern, or undefined when it compiles (for config validation). */
export function tagPatternProblem(pattern: string): string | undefined {
  return problemOf(() => compileTagPattern(pattern))
}

const globCache = new Map<string, CompiledPattern>()
const tagCache = new Map<string, CompiledPattern>()

/** Whether `input` matches the glob; compiled patterns are cached. Throws PatternError. */
export function matchesGlob(pattern: string, input: string): boolean {
  return cached(globCache, pattern, compileGlob).test(input)
}

/** Whether `tag` matches the tag pattern; compiled patterns are cached. Throws PatternError. */
export function matchesTagPattern(pattern: string, tag: string): boolean {
  return cached(tagCache, pattern, compileTagPattern).test(tag)
}

function cached(
  cache: Map<string, CompiledPattern>,
  pattern: string,
  compile: (p: string) => CompiledPattern,
): CompiledPattern {
  let compiled = cache.get(pattern)
  if (!compiled) {
    if (cache.size >= 1000) cache.clear()
    compiled = compile(pattern)
    cache.set(pattern, compiled)
  }
  return compiled
}

function problemOf(compile: () => unknown): string | undefined {
  try {
    compile()
    return undefined
  } catch (err) {
    if (err instanceof PatternError) return err.problem
    throw err
  }
}

function checkLength(pattern: string): void {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new PatternError(String(pattern), 'is empty')
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new PatternError(pattern.slice(0, 40), `is longer than ${MAX_PATTERN_LENGTH} characters`)
  }
}

// ---- syntax tree ---------------------------------------------------------------------------------

type CharTest = (c: number) => boolean

type Node =
  | { type: 'char'; test: CharTest; slash?: true }
  | { type: 'seq'; items: Node[] }
  | { type: 'alt'; items: Node[] }
  | { type: 'repeat'; node: Node; min: number; max: number }
  | { type: 'assert'; at: 'start' | 'end' }

const SLASH = 0x2f
const NEWLINE = 0x0a
const anyChar: CharTest = () => true
const notSlash: CharTest = (c) => c !== SLASH
const notNewline: CharTest = (c) => c !== NEWLINE
const isDigit: CharTest = (c) => c >= 0x30 && c <= 0x39
const isWord: CharTest = (c) =>
  isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f
// RE2's \s: tab, newline, form feed, carriage return, space.
const isSpace: CharTest = (c) => c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d || c === 0x20

const char = (code: number): Node => ({ type: 'char', test: (c) => c === code })
/** A literal `/` remembers that it is one: a `**` right after it may absorb it (`a/**` matches `a`). */
const slashLiteral = (): Node => ({ type: 'char', test: (c) => c === SLASH, slash: true })
const literal = (code: number): Node => (code === SLASH ? slashLiteral() : char(code))
const seq = (...items: Node[]): Node => ({ type: 'seq', items })
const star = (node: Node): Node => ({ type: 'repeat', node, min: 0, max: Infinity })
const optional = (node: Node): Node => ({ type: 'repeat', node, min: 0, max: 1 })
const anyRun = (): Node => star({ type: 'char', test: anyChar })

// ---- globs ---------------------------------------------------------------------------------------

class GlobParser {
  private i = 0

  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.sequence(false, true)
    if (this.i < this.src.length) throw this.error(`unexpected ${this.src[this.i]}`)
    return node
  }

  private error(problem: string): PatternError {
    return new PatternError(this.src, problem)
  }

  /** One alternative: up to the end, or up to `,` / `}` inside braces. */
  private sequence(inBraces: boolean, segmentStart: boolean): Node {
    const items: Node[] = []
    let atSegmentStart = segmentStart
    const src = this.src
    const endsAlternative = (j: number) => j >= src.length || (inBraces && (src[j] === ',' || src[j] === '}'))

    while (!endsAlternative(this.i)) {
      const c = src[this.i]!
      if (c === '*') {
        let j = this.i
        while (src[j] === '*') j++
        const doublestar = j - this.i >= 2 && atSegmentStart && (src[j] === '/' || endsAlternative(j))
        if (doublestar && src[j] === '/') {
          // `**/`: any number of leading segments, including none.
          items.push(optional(seq(anyRun(), slashLiteral())))
          this.i = j + 1
          atSegmentStart = true
          continue
        }
        if (doublestar) {
          // A trailing `/**` also matches the bare prefix: `a/**` matches `a`.
          const last = items.at(-1)
          if (last?.type === 'char' && last.slash) {
            items.pop()
            items.push(optional(seq(slashLiteral(), anyRun())))
          } else {
            items.push(anyRun())
          }
        } else {
          // `*`, and `**` inside a segment (`a**b`), stay within one segment.
          items.push(star({ type: 'char', test: notSlash }))
        }
        this.i = j
        atSegmentStart = false
        continue
      }
      this.i++
      if (c === '?') {
        items.push({ type: 'char', test: notSlash })
      } else if (c === '[') {
        items.push(this.charClass())
      } else if (c === '{') {
        const alternatives: Node[] = []
        for (;;) {
          alternatives.push(this.sequence(true, atSegmentStart))
          const next = src[this.i]
          this.i++
          if (next === '}') break
          if (next !== ',') throw this.error('unterminated {')
        }
        items.push({ type: 'alt', items: alternatives })
      } else if (c === '\\') {
        if (this.i >= src.length) throw this.error('ends with a lone \\')
        items.push(literal(src.charCodeAt(this.i)))
        this.i++
      } else if (c === '/') {
        items.push(slashLiteral())
        atSegmentStart = true
        continue
      } else {
        items.push(literal(c.charCodeAt(0)))
      }
      atSegmentStart = false
    }
    return seq(...items)
  }

  /** `[…]` after the `[`: a leading `!` or `^` negates; `]` first is literal; never matches `/`. */
  private charClass(): Node {
    const src = this.src
    let negated = false
    if (src[this.i] === '!' || src[this.i] === '^') {
      negated = true
      this.i++
    }
    const ranges: Array<[number, number]> = []
    let first = true
    for (;;) {
      if (this.i >= src.length) throw this.error('unterminated [')
      let c = src.charCodeAt(this.i)
      if (c === 0x5d && !first) break // ]
      first = false
      if (c === 0x5c) {
        this.i++
        if (this.i >= src.length) throw this.error('unterminated [')
        c = src.charCodeAt(this.i)
      }
      this.i++
      let hi = c
      if (src[this.i] === '-' && src[this.i + 1] !== undefined && src[this.i + 1] !== ']') {
        this.i++
        if (src[this.i] === '\\') this.i++
        if (this.i >= src.length) throw this.error('unterminated [')
        hi = src.charCodeAt(this.i)
        this.i++
        if (hi < c) throw this.error(`range ${String.fromCharCode(c)}-${String.fromCharCode(hi)} is reversed`)
      }
      ranges.push([c, hi])
    }
    this.i++ // ]
    const inRanges = (c: number) => ranges.some(([lo, hi]) => c >= lo && c <= hi)
    return {
      type: 'char',
      test: negated ? (c) => c !== SLASH && !inRanges(c) : (c) => c !== SLASH && inRanges(c),
    }
  }
}

// ---- regexes -------------------------------------------------------------------------------------

class RegexParser {
  private i = 0

  constructor(
    private readonly pattern: string,
    private readonly src: string,
  ) {}

  parse(): Node {
    const node = this.alternation()
    if (this.i < this.src.length) throw this.error('unmatched )')
    return node
  }

  private error(problem: string): PatternError {
    return new PatternError(this.pattern, problem)
  }

  private alternation(): Node {
    const items = [this.sequence()]
    while (this.src[this.i] === '|') {
      this.i++
      items.push(this.sequence())
    }
    return items.length === 1 ? items[0]! : { type: 'alt', items }
  }

  private sequence(): Node {
    const items: Node[] = []
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      const atom = this.atom()
      items.push(this.quantified(atom))
    }
    return seq(...items)
  }

  private quantified(atom: Node): Node {
    const bounds = this.quantifier()
    if (!bounds) return atom
    if (atom.type === 'assert') throw this.error('^ and $ cannot be repeated')
    if (this.src[this.i] === '?') this.i++ // lazy: the same language for a yes/no match
    if (this.src[this.i] === '+') throw this.error('possessive quantifiers are not supported')
    if (this.quantifierAhead()) throw this.error('a quantifier cannot follow another; group it first')
    return { type: 'repeat', node: atom, min: bounds.min, max: bounds.max }
  }

  private quantifier(): { min: number; max: number } | undefined {
    const c = this.src[this.i]
    if (c === '*' || c === '+' || c === '?') {
      this.i++
      return { min: c === '+' ? 1 : 0, max: c === '?' ? 1 : Infinity }
    }
    const braces = this.braces()
    if (!braces) return undefined
    this.i += braces.length
    return braces
  }

  private quantifierAhead(): boolean {
    const c = this.src[this.i]
    return c === '*' || c === '+' || c === '?' || this.braces() !== undefined
  }

  /** `{n}`, `{n,}` or `{n,m}` at the cursor; anything else starting with `{` is a literal `{`. */
  private braces(): { min: number; max: number; length: number } | undefined {
    const match = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i))
    if (!match) return undefined
    const min = Number(match[1])
    const max = match[2] === undefined ? min : match[3] === '' ? Infinity : Number(match[3])
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
      throw this.error(`repeat counts above ${MAX_REPEAT} are not supported`)
    }
    if (max < min) throw this.error(`repeat {${min},${max}} has its bounds reversed`)
    return { min, max, length: match[0].length }
  }

  private atom(): Node {
    const src = this.src
    const c = src[this.i]!
    if (c === '*' || c === '+' || c === '?' || this.braces()) throw this.error('nothing to repeat')
    this.i++
    switch (c) {
      case '(':
        return this.group()
      case '[':
        return this.charClass()
      case '.':
        return { type: 'char', test: notNewline }
      case '^':
        return { type: 'assert', at: 'start' }
      case '$':
        return { type: 'assert', at: 'end' }
      case '\\': {
        const escaped = this.escape(false)
        return typeof escaped === 'number' ? char(escaped) : { type: 'char', test: escaped }
      }
      default:
        return char(c.charCodeAt(0))
    }
  }

  private group(): Node {
    const rest = this.src.slice(this.i)
    if (rest.startsWith('?')) {
      if (rest.startsWith('?=') || rest.startsWith('?!')) throw this.error('lookaheads are not supported')
      if (rest.startsWith('?<=') || rest.startsWith('?<!')) throw this.error('lookbehinds are not supported')
      const named = /^\?P?<[A-Za-z_][A-Za-z0-9_]*>/.exec(rest)
      if (rest.startsWith('?:')) this.i += 2
      else if (named) this.i += named[0].length
      else throw this.error(`unsupported group (${rest.slice(0, 3)}: flags and other extensions are refused`)
    }
    const inner = this.alternation()
    if (this.src[this.i] !== ')') throw this.error('missing )')
    this.i++
    return inner
  }

  /** After the backslash: a code unit, or a test for the class escapes (\d \w \s and negations). */
  private escape(inClass: boolean): number | CharTest {
    const src = this.src
    if (this.i >= src.length) throw this.error('ends with a lone \\')
    const c = src[this.i]!
    this.i++
    switch (c) {
      case 'd':
        return isDigit
      case 'D':
        return (x) => !isDigit(x)
      case 'w':
        return isWord
      case 'W':
        return (x) => !isWord(x)
      case 's':
        return isSpace
      case 'S':
        return (x) => !isSpace(x)
      case 't':
        return 0x09
      case 'n':
        return 0x0a
      case 'r':
        return 0x0d
      case 'f':
        return 0x0c
      case 'v':
        return 0x0b
      case 'x':
      case 'u': {
        const digits = c === 'x' ? 2 : 4
        const hex = src.slice(this.i, this.i + digits)
        if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex))
          throw this.error(`\\${c} needs ${digits} hex digits`)
        this.i += digits
        return Number.parseInt(hex, 16)
      }
      case 'k':
        throw this.error('backreferences are not supported')
      case 'b':
      case 'B':
        throw this.error(inClass ? 'unknown escape \\b' : 'word boundaries (\\b, \\B) are not supported')
      case 'p':
      case 'P':
        throw this.error('Unicode property escapes are not supported')
    }
    if (c >= '1' && c <= '9') throw this.error('backreferences are not supported')
    if (/[0-9A-Za-z]/.test(c)) throw this.error(`unknown escape \\${c}`)
    return c.charCodeAt(0)
  }

  /** `[…]` after the `[`. */
  private charClass(): Node {
    const src = this.src
    let negated = false
    if (src[this.i] === '^') {
      negated = true
      this.i++
    }
    if (src[this.i] === ']') throw this.error('empty character class (write \\] for a literal ])')
    const tests: CharTest[] = []
    for (;;) {
      if (this.i >= src.length) throw this.error('unterminated [')
      if (src[this.i] === ']') break
      if (src.startsWith('[:', this.i)) throw this.error('POSIX classes like [:alpha:] are not supported')
      const lo = this.classAtom()
      if (src[this.i] === '-' && src[this.i + 1] !== ']' && this.i + 1 < src.length) {
        this.i++
        const hi = this.classAtom()
        if (typeof lo !== 'number' || typeof hi !== 'number') {
          throw this.error('a range cannot start or end with \\d, \\w or \\s')
        }
        if (hi < lo)
          throw this.error(`range ${String.fromCharCode(lo)}-${String.fromCharCode(hi)} is reversed`)
        tests.push((x) => x >= lo && x <= hi)
      } else {
        tests.push(typeof lo === 'number' ? (x) => x === lo : lo)
      }
    }
    this.i++ // ]
    const inClass = (x: number) => tests.some((test) => test(x))
    return { type: 'char', test: negated ? (x) => !inClass(x) : inClass }
  }

  /** One class member: a code unit, or a test for the class escapes. */
  private classAtom(): number | CharTest {
    const src = this.src
    if (src[this.i] !== '\\') {
      const code = src.charCodeAt(this.i)
      this.i++
      return code
    }
    this.i++
    return this.escape(true)
  }
}

// ---- automaton -----------------------------------------------------------------------------------

type State =
  | { kind: 'char'; test: CharTest; out: number }
  | { kind: 'split'; outs: number[] }
  | { kind: 'assert'; at: 'start' | 'end'; out: number }
  | { kind: 'match' }

interface DfaState {
  /** NFA states that consume a character, assert `$`, or match. Sorted. */
  ids: number[]
  acceptsAtEnd: boolean
  next: Map<number, DfaState>
}

class Automaton implements CompiledPattern {
  private readonly states: State[] = []
  private readonly cache = new Map<string, DfaState>()
  private readonly initial: DfaState

  constructor(
    readonly source: string,
    readonly kind: PatternKind,
    root: Node,
  ) {
    this.states.push({ kind: 'match' })
    const start = this.build(root, 0)
    const ids = this.closure([start], true)
    // Not shared through the cache: `^` only passes here, so equal ids may accept differently.
    this.initial = { ids, acceptsAtEnd: this.acceptsAtEnd(ids, true), next: new Map() }
  }

  test(input: string): boolean {
    let state = this.initial
    for (let i = 0; i < input.length; i++) {
      const c = input.charCodeAt(i)
      state = state.next.get(c) ?? this.step(state, c)
      if (state.ids.length === 0) return false
    }
    return state.acceptsAtEnd
  }

  private step(from: DfaState, c: number): DfaState {
    const seeds: number[] = []
    for (const id of from.ids) {
      const s = this.states[id]!
      if (s.kind === 'char' && s.test(c)) seeds.push(s.out)
    }
    const ids = this.closure(seeds, false)
    const key = ids.join(',')
    let to = this.cache.get(key)
    if (!to) {
      to = { ids, acceptsAtEnd: this.acceptsAtEnd(ids, false), next: new Map() }
      // Past the bound, states are still computed but no longer kept: memory stays bounded.
      if (this.cache.size >= MAX_CACHED_DFA_STATES) return to
      this.cache.set(key, to)
    }
    from.next.set(c, to)
    return to
  }

  /** Follows splits (and `^` at the start); keeps the states that wait for input or for the end. */
  private closure(seeds: number[], atStart: boolean): number[] {
    const seen = new Set<number>()
    const kept: number[] = []
    const stack = [...seeds]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (seen.has(id)) continue
      seen.add(id)
      const s = this.states[id]!
      if (s.kind === 'split') stack.push(...s.outs)
      else if (s.kind === 'assert' && s.at === 'start') {
        if (atStart) stack.push(s.out)
      } else kept.push(id)
    }
    return kept.sort((a, b) => a - b)
  }

  private acceptsAtEnd(ids: number[], atStart: boolean): boolean {
    const seen = new Set<number>()
    const stack = [...ids]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (seen.has(id)) continue
      seen.add(id)
      const s = this.states[id]!
      if (s.kind === 'match') return true
      if (s.kind === 'split') stack.push(...s.outs)
      else if (s.kind === 'assert' && (s.at === 'end' || atStart)) stack.push(s.out)
    }
    return false
  }

  private add(state: State): number {
    if (this.states.length >= MAX_NFA_STATES) {
      throw new PatternError(this.source, 'is too complex (too many repeats)')
    }
    this.states.push(state)
    return this.states.length - 1
  }

  /** Compiles `node` to states that continue at `next`; returns its entry state. */
  private build(node: Node, next: number): number {
    switch (node.type) {
      case 'char':
        return this.add({ kind: 'char', test: node.test, out: next })
      case 'assert':
        return this.add({ kind: 'assert', at: node.at, out: next })
      case 'seq': {
        let entry = next
        for (let k = node.items.length - 1; k >= 0; k--) entry = this.build(node.items[k]!, entry)
        return entry
      }
      case 'alt':
        return this.add({ kind: 'split', outs: node.items.map((item) => this.build(item, next)) })
      case 'repeat': {
        let entry = next
        if (node.max === Infinity) {
          const loop = this.add({ kind: 'split', outs: [] })
          const body = this.build(node.node, loop)
          ;(this.states[loop] as { outs: number[] }).outs.push(body, next)
          entry = loop
        } else {
          for (let k = node.min; k < node.max; k++) {
            entry = this.add({ kind: 'split', outs: [this.build(node.node, entry), next] })
          }
        }
        for (let k = 0; k < node.min; k++) entry = this.build(node.node, entry)
        return entry
      }
    }
  }
}
