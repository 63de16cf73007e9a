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

export function parseSource(file: string, text: string): SourceDocument {
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

function parseJson(file: string, text: string): SourceDocument {
  const lines = new LineIndex(text)
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
  if (root && problems.length === 0) findJsonDuplicates(file, root, [], lines, problems)
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

function findJsonDuplicates(file: string, node: JsonNode, path: Array<string | number>, lines: LineIndex, out: Diagnostic[]): void {
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
      if (value) findJsonDuplicates(file, value, [...path, name], lines, out)
    }
  } else if (node.type === 'array') {
    node.children?.forEach((child, i) => findJsonDuplicates(file, child, [...path, i], lines, out))
  }
}

function parseYaml(file: string, text: string): SourceDocument {
  const {isMap, isScalar, isSeq, LineCounter, parseDocument} = loadYaml()
  const counter = new LineCounter()
  const doc = parseDocument(text, {lineCounter: counter, uniqueKeys: true, prettyErrors: false})
  const at = (offset: number): Position => {
    const p = counter.linePos(offset)
    return {line: p.line, column: p.col}
  }
  const problems: Diagnostic[] = [...doc.errors].map((e) => {
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
  return {
    file,
    value: problems.length === 0 ? doc.toJS({maxAliasCount: 100}) : undefined,
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

/** The key path of the repeated key starting at `offset`, and where its first occurrence starts. */
function findDuplicateKey(node: unknown, offset: number, path: Array<string | number> = []): {path: Array<string | number>; first: number} | undefined {
  const {isMap, isScalar, isSeq} = loadYaml()
  if (isMap(node)) {
    for (const pair of node.items) {
      const name = isScalar(pair.key) ? pair.key.value : pair.key
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        const first = node.items.find((other) => isScalar(other.key) && other.key.value === name)
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
