// Parses the nodes file's text into a plain value plus a way back from a key path to a line and
// column, so every later error can name its place.
//
// Two parsers, chosen for speed without losing positions: strict JSON goes through jsonc-parser
// (VS Code's parser: offsets for every node, sees duplicate keys, about as fast as JSON.parse);
// anything else — YAML, or the paper's JSON with a single-quoted string — through `yaml`, which
// keeps positions too but is ~80x slower on a large file.
import {findNodeAtLocation, getNodeValue, parseTree, printParseErrorCode, type Node as JsonNode, type ParseError} from 'jsonc-parser'
import {createRequire} from 'node:module'

import type {Node as YamlNode} from 'yaml'

import type {Diagnostic, Position} from '../errors.js'

// `yaml` costs more to load than the rest of a `show --json` run; strict JSON never needs it.
const requireCjs = createRequire(import.meta.url)
let yamlModule: typeof import('yaml') | undefined
const loadYaml = (): typeof import('yaml') => (yamlModule ??= requireCjs('yaml') as typeof import('yaml'))

export type KeyPath = ReadonlyArray<string | number>

export interface SourceDocument {
  file: string
  value: unknown
  /** Where the value at `path` starts. */
  locateValue(path: KeyPath): Position | undefined
  /** Where the key of the entry at `path` starts (falls back to the value). */
  locateKey(path: KeyPath): Position | undefined
  /** Syntax errors and duplicate keys; when non-empty, `value` must not be used. */
  problems: Diagnostic[]
}

class LineIndex {
  private readonly starts: number[] = [0]

  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1)
  }

  position(offset: number): Position {
    let lo = 0
    let hi = this.starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((this.starts[mid] ?? 0) <= offset) lo = mid
      else hi = mid - 1
    }
    return {line: lo + 1, column: offset - (this.starts[lo] ?? 0) + 1}
  }
}

/** How deep a nodes file may nest (dicts and lists); deeper input is refused before it can exhaust the stack. */
export const MAX_NESTING = 100
/** The most text a YAML file may stand for once its aliases are expanded (the size of the output, not the alias count). */
export const MAX_EXPANDED_BYTES = 16 * 1024 * 1024

export function parseSource(file: string, input: string): SourceDocument {
  // A UTF-8 byte-order mark is not part of the document (YAML skips it; JSON editors write it).
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input
  const trimmed = text.trimStart()
  if (trimmed.startsWith('{')) {
    const json = parseJson(file, text)
    // Strict JSON failed: the paper's own example has a single-quoted string, which YAML's flow
    // syntax accepts. Keep the JSON errors if YAML cannot read it either; they read better.
    if (json.problems.length === 0 || json.problems.some((p) => p.message.startsWith('duplicate key'))) return json
    // Only the single quotes are forgiven: YAML would also read trailing commas, comments or bare
    // words, but not as the author meant (a `// comment` becomes part of a key). Check the rest as
    // strict JSON with each single-quoted string made double-quoted (same length, so same places).
    const {text: requoted, exact} = doubleQuoteSingleQuoted(text)
    if (requoted === text) return json
    const strict = parseJson(file, requoted)
    // When no single-quoted string held a character that needed changing, the requoted text
    // means exactly what the file says: no need for the (slow) YAML parser.
    if (strict.problems.length > 0 || exact) return strict
    const yaml = parseYaml(file, text)
    return yaml.problems.length === 0 ? yaml : json
  }
  return parseYaml(file, text)
}

/** `'…'` outside double-quoted strings → `"…"` of the same length (content kept where JSON allows it). */
function doubleQuoteSingleQuoted(text: string): {text: string; exact: boolean} {
  let exact = true
  let out = ''
  let i = 0
  while (i < text.length) {
    const c = text[i]
    if (c === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== '"' && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1
      out += text.slice(i, j + 1)
      i = j + 1
    } else if (c === "'") {
      let j = i + 1
      while (j < text.length && text[j] !== '\n' && !(text[j] === "'" && text[j + 1] !== "'")) j += text[j] === "'" ? 2 : 1
      if (text[j] !== "'") {
        out += text.slice(i, j)
        i = j
        continue
      }
      const content = text.slice(i + 1, j)
      if (/["\\\u0000-\u001f]|''/.test(content)) exact = false
      out += `"${content.replace(/["\\\u0000-\u001f]/g, '_')}"`
      i = j + 1
    } else {
      out += c
      i++
    }
  }
  return {text: out, exact}
}

/** A document that cannot be used, with its one problem. */
function refused(file: string, problem: Diagnostic): SourceDocument {
  return {file, value: undefined, problems: [problem], locateValue: () => undefined, locateKey: () => undefined}
}

const tooDeep = (limit: number): string =>
  `nested more than ${limit} levels deep (dicts and lists); muster reads at most ${limit} levels: flatten this part of the file`

/** Where JSON brackets first nest deeper than `limit` (strings skipped), without recursion. */
export function jsonTooDeepAt(text: string, limit: number): number | undefined {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22 && text.charCodeAt(i) !== 0x0a; i++) if (text.charCodeAt(i) === 0x5c) i++
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > limit) return i
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return undefined
}

/**
 * Where a YAML text may nest deeper than `limit`, estimated line by line without the yaml parser
 * (which aborts the process on a few thousand levels): indentation levels, leading "- " and "? "
 * indicators and open flow brackets. Block scalars and quoted text are skipped.
 */
export function yamlTooDeepAt(text: string, limit: number): number | undefined {
  const indents: number[] = []
  let flow = 0
  let blockDepth = 0
  let quote: string | undefined
  let blockScalarParent: number | undefined
  let lineStart = 0
  while (lineStart <= text.length) {
    let lineEnd = text.indexOf('\n', lineStart)
    if (lineEnd === -1) lineEnd = text.length
    let i = lineStart
    while (i < lineEnd && text[i] === ' ') i++
    const indent = i - lineStart
    const blank = i >= lineEnd || text[i] === '\r' || text[i] === '#'
    if (blockScalarParent !== undefined && (blank || indent > blockScalarParent)) {
      lineStart = lineEnd + 1
      continue
    }
    blockScalarParent = undefined
    if (quote === undefined && flow === 0 && !blank) {
      if (text.startsWith('---', i) || text.startsWith('...', i)) indents.length = 0
      while (indents.length > 0 && (indents.at(-1) ?? 0) > indent) indents.pop()
      if (indents.length === 0 || (indents.at(-1) ?? 0) < indent) indents.push(indent)
      blockDepth = indents.length
      if (blockDepth > limit) return i
      while ((text[i] === '-' || text[i] === '?') && (text[i + 1] === ' ' || i + 1 >= lineEnd)) {
        if (++blockDepth > limit) return i
        i += 2
        while (text[i] === ' ') i++
      }
    }
    let tokenStart = true
    let lastContent = -1
    // In block context a plain scalar runs to the end of the line (or to `: `, a `#` comment): the
    // brackets in `note: a [b [c` are text, not flow collections.
    let plain = false
    for (; i < lineEnd; i++) {
      const c = text[i]
      if (plain && flow === 0 && quote === undefined) {
        if (c === ':' && (text[i + 1] === ' ' || i + 1 >= lineEnd || text[i + 1] === '\r')) {
          plain = false
          tokenStart = true
        } else if (c === '#' && (text[i - 1] === ' ' || text[i - 1] === '\t')) break
        else if (c !== ' ' && c !== '\t' && c !== '\r') lastContent = i
        continue
      }
      if (quote !== undefined) {
        if (quote === '"' && c === '\\') i++
        else if (c === quote) {
          if (quote === "'" && text[i + 1] === "'") i++
          else quote = undefined
        }
        lastContent = i
        continue
      }
      if (c === ' ' || c === '\t' || c === '\r') {
        tokenStart = true
        continue
      }
      if (c === '#' && tokenStart) break
      if ((c === '"' || c === "'") && (tokenStart || flow > 0)) quote = c
      else if ((c === '[' || c === '{') && (tokenStart || flow > 0)) {
        flow++
        if (blockDepth + flow > limit) return i
      } else if ((c === ']' || c === '}') && flow > 0) flow--
      // An anchor (&a) or tag (!!str) comes before the node it names, which may be a flow collection.
      else if (flow === 0 && tokenStart && c !== '&' && c !== '!' && c !== '*' && !((c === '-' || c === '?' || c === ':') && (text[i + 1] === ' ' || i + 1 >= lineEnd))) plain = true
      tokenStart = c === ',' || c === '[' || c === '{' || c === ':' || c === '-' || c === '?'
      lastContent = i
    }
    // A block scalar (`key: |`, `- >-`): its lines are text, however they are indented.
    if (quote === undefined && flow === 0 && lastContent >= 0) {
      let j = lastContent
      while (j > lineStart && /[-+0-9]/.test(text[j] ?? '')) j--
      if ((text[j] === '|' || text[j] === '>') && (j === lineStart || text[j - 1] === ' ')) blockScalarParent = indent
    }
    lineStart = lineEnd + 1
  }
  return undefined
}

/** Problems with JSON numbers that JSON.parse would turn into something else: Infinity, or a rounded integer. */
/**
 * A number JSON cannot hold as written. Beyond ±2^53 a double is always a whole number, and not
 * every whole number is one (9007199254740993, 9007199254740993.0 and 90071992547409930e-1 all
 * become …992): any number beyond ±2^53 is refused, in any notation. A nonzero number too small
 * for a double (1e-400, 2e-324) would become 0: refused too.
 */
function numberProblem(value: number, written: string): string | undefined {
  if (!Number.isFinite(value)) return 'a finite number, got one JSON cannot hold (infinite, not a number, or beyond 1.8e308); use a smaller number, or quote it to keep it as text'
  if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
    return `a whole number within ±2^53 (9007199254740991), got ${written.trim()}, which would be silently rounded (numbers beyond ±2^53, in any notation, are refused); quote it to keep it as text`
  }
  const mantissa = written.trim().replace(/^[-+]?0[xob]/i, '').split(/e/i)[0] ?? ''
  if (value === 0 && !/^[-+]?0[xob]/i.test(written.trim()) && /[1-9]/.test(mantissa)) {
    return `a number a double can hold, got ${written.trim()}, which is too close to 0 and would silently become 0; write 0, or quote it to keep it as text`
  }
  return undefined
}

function parseJson(file: string, text: string): SourceDocument {
  const lines = new LineIndex(text)
  const deep = jsonTooDeepAt(text, MAX_NESTING)
  if (deep !== undefined) return refused(file, {file, position: lines.position(deep), path: [], message: tooDeep(MAX_NESTING)})
  const errors: ParseError[] = []
  const root = parseTree(text, errors, {allowTrailingComma: false, disallowComments: true, allowEmptyContent: false})
  const problems: Diagnostic[] = []
  for (const e of errors) {
    const code = printParseErrorCode(e.error)
    // jsonc-parser reports a trailing comma as a missing key or value at the closing bracket.
    let comma = e.offset - 1
    while (comma >= 0 && /\s/.test(text[comma] ?? '')) comma--
    const trailing = (code === 'PropertyNameExpected' || code === 'ValueExpected') && text[comma] === ',' && (text[e.offset] === '}' || text[e.offset] === ']')
    const position = lines.position(trailing ? comma : e.offset)
    const message = trailing
      ? `invalid JSON: trailing comma before '${text[e.offset]}' (JSON allows none; remove it)`
      : `invalid JSON: ${describeJsonError(code)}`
    if (problems.some((p) => p.message === message && p.position?.line === position.line && p.position.column === position.column)) continue
    problems.push({file, position, path: [], message})
  }
  if (root && problems.length === 0) findJsonDuplicates(file, root, [], lines, problems, text)
  const valueNode = (path: KeyPath): JsonNode | undefined => (root ? findNodeAtLocation(root, [...path]) : undefined)
  return {
    file,
    value: root && problems.length === 0 ? getNodeValue(root) : undefined,
    problems,
    locateValue: (path) => {
      const node = valueNode(path)
      return node ? lines.position(node.offset) : undefined
    },
    locateKey: (path) => {
      const node = valueNode(path)
      if (!node) return undefined
      const property = node.parent
      const key = property?.type === 'property' ? property.children?.[0] : undefined
      return lines.position((key ?? node).offset)
    },
  }
}

function describeJsonError(code: string): string {
  const words: Record<string, string> = {
    InvalidSymbol: 'unexpected character',
    InvalidNumberFormat: 'malformed number',
    PropertyNameExpected: 'expected a key in double quotes',
    ValueExpected: 'expected a value',
    ColonExpected: "expected ':' after the key",
    CommaExpected: "expected ',' between entries",
    CloseBraceExpected: "expected '}'",
    CloseBracketExpected: "expected ']'",
    EndOfFileExpected: 'unexpected text after the end of the document',
    InvalidCommentToken: 'comments are not allowed in JSON',
    UnexpectedEndOfComment: 'unterminated comment',
    UnexpectedEndOfString: 'unterminated string',
    UnexpectedEndOfNumber: 'unterminated number',
    InvalidUnicode: 'invalid unicode escape',
    InvalidEscapeCharacter: 'invalid escape character',
    InvalidCharacter: 'invalid character in string',
  }
  return words[code] ?? code
}

function findJsonDuplicates(file: string, node: JsonNode, path: Array<string | number>, lines: LineIndex, out: Diagnostic[], text: string): void {
  if (node.type === 'object') {
    const seen = new Map<string, number>()
    for (const property of node.children ?? []) {
      const [key, value] = property.children ?? []
      if (!key) continue
      const name = String(key.value)
      const first = seen.get(name)
      if (first === undefined) seen.set(name, key.offset)
      else {
        const at = lines.position(first)
        out.push({
          file,
          position: lines.position(key.offset),
          path: [...path, name],
          message: `duplicate key "${name}" (first defined at line ${at.line}, column ${at.column}); JSON would silently keep the last one — remove one of them`,
        })
      }
      if (value) findJsonDuplicates(file, value, [...path, name], lines, out, text)
    }
  } else if (node.type === 'array') {
    node.children?.forEach((child, i) => findJsonDuplicates(file, child, [...path, i], lines, out, text))
  } else if (node.type === 'number') {
    const problem = numberProblem(node.value as number, text.slice(node.offset, node.offset + node.length))
    if (problem) out.push({file, position: lines.position(node.offset), path, message: `expected ${problem}`})
  }
}

function parseYaml(file: string, text: string): SourceDocument {
  const deep = yamlTooDeepAt(text, MAX_NESTING)
  if (deep !== undefined) return refused(file, {file, position: new LineIndex(text).position(deep), path: [], message: tooDeep(MAX_NESTING)})
  const {isMap, isScalar, isSeq, LineCounter, parseDocument} = loadYaml()
  const counter = new LineCounter()
  // Keys are text as written (see checkYamlNodes), so duplicates are too: `007` and `7`, `0x10` and
  // `16`, `1.1` and `1.10` are different keys; `7` and `"7"` the same.
  const doc = parseDocument(text, {lineCounter: counter, uniqueKeys: (a, b) => yamlKeyText(a) === yamlKeyText(b), prettyErrors: false})
  const at = (offset: number): Position => {
    const p = counter.linePos(offset)
    return {line: p.line, column: p.col}
  }
  const problems: Diagnostic[] = [...doc.errors].map((e) => {
    // The estimate above let through something the parser still could not nest: say so plainly.
    if (/Maximum call stack/.test(e.message)) return {file, position: at(e.pos[0]), path: [], message: tooDeep(MAX_NESTING)}
    const duplicate = e.code === 'DUPLICATE_KEY' ? findDuplicateKey(doc.contents, e.pos[0]) : undefined
    if (duplicate) {
      const first = at(duplicate.first)
      return {
        file,
        position: at(e.pos[0]),
        path: duplicate.path,
        message: `duplicate key "${String(duplicate.path.at(-1))}" (first defined at line ${first.line}, column ${first.column}); remove one of them`,
      }
    }
    return {
      file,
      position: at(e.code === 'MISSING_CHAR' ? (unterminatedQuoteStart(doc.contents, e.pos[0]) ?? e.pos[0]) : skipSpaces(text, e.pos[0])),
      path: [],
      message: e.code === 'DUPLICATE_KEY' ? `duplicate key: ${firstLine(e.message)}; remove one of them` : `invalid syntax: ${firstLine(e.message)}`,
    }
  })
  const find = (path: KeyPath): {key?: YamlNode; value?: YamlNode} | undefined => {
    let node: unknown = doc.contents
    let key: YamlNode | undefined
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find((item) => (isScalar(item.key) ? item.key.value : item.key) === segment)
        if (!pair) return undefined
        key = isScalar(pair.key) ? pair.key : undefined
        node = pair.value
      } else if (isSeq(node) && typeof segment === 'number') {
        node = node.items[segment]
        key = undefined
      } else return undefined
    }
    return {key, value: (node ?? undefined) as YamlNode | undefined}
  }
  // An empty value (`web:` and nothing) has no text of its own: point at its key instead.
  const offsetOf = (n: YamlNode | undefined): number | undefined => (n?.range && n.range[0] < n.range[1] ? n.range[0] : undefined)
  const targets = problems.length === 0 ? aliasTargets(doc) : new Map()
  if (problems.length === 0) {
    const found = checkYamlNodes(doc, targets)
    if (found) problems.push({file, position: at(found.offset), path: found.path, message: found.message})
  }
  return {
    file,
    // Aliases are bounded by checkYamlNodes (by the size they expand to), not by their count.
    value: problems.length === 0 ? yamlToPlain(doc, targets) : undefined,
    problems,
    locateValue: (path) => {
      const found = find(path)
      const offset = offsetOf(found?.value) ?? offsetOf(found?.key)
      return offset === undefined ? undefined : at(offset)
    },
    locateKey: (path) => {
      const found = find(path)
      const offset = offsetOf(found?.key) ?? offsetOf(found?.value)
      return offset === undefined ? undefined : at(offset)
    },
  }
}

/** YAML tags whose values JSON holds as they are. */
const YAML_TAG = 'tag:yaml.org,2002:'
const JSON_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `${YAML_TAG}${t}`))

/**
 * Walks a parsed YAML document once (aliases by reference, each node measured once) and finds the
 * first thing that would not survive into JSON as written: a merge key, a non-text key, a tag such
 * as !!binary or !!set, a number JSON cannot hold, nesting deeper than MAX_NESTING, or aliases that
 * expand to more than MAX_EXPANDED_BYTES. Keys that look like numbers, booleans or null keep the
 * text as written (`007` stays "007"): group names and attribute names are strings.
 */
function checkYamlNodes(doc: import('yaml').Document, targets: AliasTargets): {offset: number; path: Array<string | number>; message: string} | undefined {
  const {isAlias, isCollection, isMap, isPair, isScalar} = loadYaml()
  const measured = new Map<unknown, {size: number; height: number}>()
  const inProgress = new Set<unknown>()
  // The text the document expands to so far, in document order: the alias that takes it past
  // MAX_EXPANDED_BYTES is the place of the error.
  let expanded = 0
  let problem: {offset: number; path: Array<string | number>; message: string} | undefined
  const tooLarge = `this expands (through YAML aliases) to more than ${MAX_EXPANDED_BYTES / 1024 / 1024} MiB of text, the most muster reads; use fewer aliases`
  const fail = (node: unknown, path: Array<string | number>, message: string): {size: number; height: number} => {
    const range = (node as {range?: [number, number, number]} | null)?.range
    problem ??= {offset: range?.[0] ?? 0, path, message}
    return {size: 0, height: 0}
  }
  const measure = (node: unknown, path: Array<string | number>, depth: number): {size: number; height: number} => {
    if (problem) return {size: 0, height: 0}
    if (isAlias(node)) {
      const target = targets.get(node)
      if (inProgress.has(target)) return fail(node, path, `alias *${node.source} refers to a node that contains it; a nodes file must be a tree`)
      // The target came before the alias, so it is measured (and counted once as written); the
      // alias repeats all of it.
      const before = measured.get(target)
      const size = measure(target, path, depth)
      if (before !== undefined) expanded += size.size
      if (expanded > MAX_EXPANDED_BYTES) return fail(node, path, tooLarge)
      return size
    }
    const known = measured.get(node)
    if (known) {
      if (depth + known.height > MAX_NESTING) return fail(node, path, tooDeep(MAX_NESTING))
      return known
    }
    if (depth > MAX_NESTING) return fail(node, path, tooDeep(MAX_NESTING))
    const tag = (node as {tag?: string} | null)?.tag
    if (tag !== undefined && !JSON_TAGS.has(tag)) {
      return fail(node, path, `the YAML tag ${tag.replace('tag:yaml.org,2002:', '!!')} is not supported: values must be strings, numbers, booleans, null, lists or dicts`)
    }
    let result = {size: 4, height: 0}
    inProgress.add(node)
    if (isScalar(node)) {
      if ((tag === `${YAML_TAG}float` || tag === `${YAML_TAG}int`) && typeof node.value === 'string') {
        // `!!float 1` is a number in YAML 1.2; the yaml package's core schema leaves it text.
        const shorthand = tag.replace(YAML_TAG, '!!')
        if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(node.value.trim())) return fail(node, path, `expected a number after ${shorthand}, got ${JSON.stringify(node.value)}`)
        node.value = Number(node.value.trim())
      }
      if ((tag === `${YAML_TAG}bool` || tag === `${YAML_TAG}null`) && typeof node.value === 'string') {
        // The same for `!!bool` and `!!null`: only what JSON can hold survives, as that value.
        const shorthand = tag.replace(YAML_TAG, '!!')
        const text = node.value.trim()
        const known: Record<string, boolean | null> = tag === `${YAML_TAG}bool` ? {true: true, false: false, True: true, False: false, TRUE: true, FALSE: false} : {null: null, Null: null, NULL: null, '~': null, '': null}
        if (!(text in known)) return fail(node, path, `expected ${tag === `${YAML_TAG}bool` ? 'true or false' : 'null'} after ${shorthand}, got ${JSON.stringify(node.value)}`)
        node.value = known[text] as boolean | null
      }
      const value = node.value
      if (typeof value === 'number') {
        const problemText = numberProblem(value, node.source ?? String(value))
        if (problemText) return fail(node, path, `expected ${problemText}`)
      } else if (value !== null && typeof value === 'object') {
        return fail(node, path, 'expected a string, number, boolean or null')
      }
      result = {size: (node.source ?? String(value)).length + 2, height: 0}
      expanded += result.size
    } else if (isCollection(node)) {
      let size = 2
      let height = 0
      for (const [i, item] of node.items.entries()) {
        let valueNode: unknown = item
        let segment: string | number = i
        if (isMap(node) && isPair(item)) {
          const key = item.key
          if (!isScalar(key)) return fail(key ?? item.value, path, 'expected a text key, got a list or dict as a key')
          if (key.type === 'PLAIN' && key.source === '<<') {
            return fail(key, [...path, '<<'], 'YAML merge keys (<<) are not supported; write the keys out, or put shared settings in __base__ (every group inherits them)')
          }
          // A plain key is text as written: `0x10`, `1e3` or `007` must not become 16, 1000 or 7.
          if (typeof key.value !== 'string') key.value = key.type === 'PLAIN' && key.source !== undefined ? key.source : String(key.value)
          segment = key.value as string
          size += (key.value as string).length + 4
          expanded += (key.value as string).length + 4
          valueNode = item.value
        }
        if (valueNode === null || valueNode === undefined) continue
        const inner = measure(valueNode, [...path, segment], depth + 1)
        if (problem) return {size: 0, height: 0}
        size += inner.size + 2
        height = Math.max(height, inner.height + 1)
      }
      result = {size, height}
    }
    inProgress.delete(node)
    measured.set(node, result)
    return result
  }
  if (doc.contents !== null) measure(doc.contents, [], 1)
  return problem
}

type AliasTargets = ReadonlyMap<unknown, unknown>

/**
 * Each alias's node, found in one visit in document order (an alias means the latest anchor of its
 * name before it). The yaml package's Alias.resolve searches the document per alias (in toJS too),
 * quadratic in the number of aliases: 20,000 of them took seconds.
 */
function aliasTargets(doc: import('yaml').Document): AliasTargets {
  const {isAlias, visit} = loadYaml()
  const targets = new Map<unknown, unknown>()
  const anchors = new Map<string, unknown>()
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) targets.set(node, anchors.get(node.source))
      else if (node.anchor !== undefined) anchors.set(node.anchor, node)
    },
  })
  return targets
}

/**
 * The document as plain JSON values, once checkYamlNodes has accepted it (keys are text, scalars
 * JSON's). An alias gives its target's value (the same object, as the yaml package's toJS does).
 */
function yamlToPlain(doc: import('yaml').Document, targets: AliasTargets): unknown {
  const {isAlias, isMap, isScalar, isSeq} = loadYaml()
  const done = new Map<unknown, unknown>()
  const convert = (node: unknown): unknown => {
    if (isAlias(node)) return convert(targets.get(node))
    if (done.has(node)) return done.get(node)
    let value: unknown = null
    if (isScalar(node)) value = node.value
    else if (isMap(node)) {
      const out: Record<string, unknown> = {}
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        Object.defineProperty(out, key, {value: convert(pair.value), enumerable: true, writable: true, configurable: true})
      }
      value = out
    } else if (isSeq(node)) value = node.items.map(convert)
    done.set(node, value)
    return value
  }
  return convert(doc.contents)
}

/** A YAML key as the text muster keeps: a plain scalar as written, a quoted one as its value. */
function yamlKeyText(key: unknown): unknown {
  const {isScalar} = loadYaml()
  if (!isScalar(key)) return key
  return key.type === 'PLAIN' && key.source !== undefined ? key.source : String(key.value)
}

/** The key path of the repeated key starting at `offset`, and where its first occurrence starts. */
function findDuplicateKey(node: unknown, offset: number, path: Array<string | number> = []): {path: Array<string | number>; first: number} | undefined {
  const {isMap, isScalar, isSeq} = loadYaml()
  if (isMap(node)) {
    for (const pair of node.items) {
      const name = yamlKeyText(pair.key)
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        const first = node.items.find((other) => isScalar(other.key) && yamlKeyText(other.key) === name)
        const start = isScalar(first?.key) ? first.key.range?.[0] : undefined
        return {path: [...path, String(name)], first: start ?? offset}
      }
      const found = findDuplicateKey(pair.value, offset, [...path, String(name)])
      if (found) return found
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = findDuplicateKey(item, offset, [...path, i])
      if (found) return found
    }
  }
  return undefined
}

/** An indentation error starts at the line's first space; the misplaced key starts after them. */
function skipSpaces(text: string, offset: number): number {
  let i = offset
  while (text[i] === ' ') i++
  return text[i] === '\n' || i >= text.length ? offset : i
}

/** A missing closing quote is found at the end of the text; the string starts at its opening quote. */
function unterminatedQuoteStart(contents: unknown, end: number): number | undefined {
  const {visit} = loadYaml()
  let start: number | undefined
  visit(contents as YamlNode, {
    Scalar(_key, node) {
      if ((node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && node.range && node.range[1] === end) {
        start = node.range[0]
        return visit.BREAK
      }
      return undefined
    },
  })
  return start
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? message
}
