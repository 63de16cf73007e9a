// Pure text rendering: data in, text out. Commands print what these return.
import {UserError} from '../errors.js'
import type {WriteReport, WriteResult} from '../artifacts/writer.js'

const codes = {red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1} as const
export type Color = keyof typeof codes

export function paint(enabled: boolean, color: Color, text: string): string {
  return enabled ? `\u001B[${codes[color]}m${text}\u001B[0m` : text
}

/**
 * Text from the nodes file made safe for a terminal: C0 and C1 control characters, DEL and the
 * bidirectional overrides become visible escapes (`\x1b`, `\u202e`), so a group's description cannot
 * move the cursor, recolour the screen, retitle the window or reorder what is shown. `keep` lists
 * characters left alone (a multi-line message keeps its line breaks). JSON output never needs this.
 */
export function neutralise(text: string, keep = ''): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) =>
    keep.includes(c) ? c : c.charCodeAt(0) < 0x100 ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** neutralise() on every string and key of a value, for a human rendering of it. */
export function neutraliseDeep<T>(value: T): T {
  if (typeof value === 'string') return neutralise(value) as T
  if (Array.isArray(value)) return value.map((v: unknown) => neutraliseDeep(v)) as T
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [neutralise(k), neutraliseDeep(v)])) as T
  }
  return value
}

export function formatError(error: Error, options: {bug: boolean; verbose: boolean; color: boolean}): string {
  // Line breaks and tabs stay (oclif indents its parse errors with a tab: `-n abc`); other
  // control characters become visible escapes.
  const lines = [`${paint(options.color, 'red', 'Error:')} ${neutralise(error.message, '\n\t')}`]
  if (error instanceof UserError && error.hint) lines.push(`${paint(options.color, 'dim', '→')} ${neutralise(error.hint, '\n\t')}`)
  if (options.bug) {
    if (options.verbose && error.stack) lines.push(error.stack)
    else lines.push('This looks like a bug in muster; run again with --verbose for the stack trace and report it.')
  }
  return `${lines.join('\n')}\n`
}

const statusColor: Record<WriteResult['status'], Color> = {
  created: 'green',
  updated: 'yellow',
  unchanged: 'dim',
  kept: 'dim',
  missing: 'red',
  stale: 'red',
}

export function formatWriteReport(report: WriteReport, options: {color: boolean; diffs: boolean}): string {
  const width = Math.max(...report.results.map((r) => r.status.length), 0)
  const lines: string[] = []
  for (const result of report.results) {
    lines.push(`${paint(options.color, statusColor[result.status], result.status.padEnd(width))}  ${result.path}`)
    // Diff lines carry nodes-file text: neutralised like show's, or a C1 or bidi control in a
    // description would reach the terminal and CI logs raw.
    if (options.diffs && result.diff) lines.push(colorDiff(neutralise(stripPatchHeader(result.diff), '\n'), options.color))
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : ''
}

function stripPatchHeader(diff: string): string {
  // createTwoFilesPatch starts with an "Index:" line and a separator; git-style ---/+++ suffice.
  return diff
    .split('\n')
    .filter((line, i) => !(i < 2 && (line.startsWith('Index:') || line.startsWith('==='))))
    .map((line) => (line.startsWith('---') || line.startsWith('+++') ? line.trimEnd() : line))
    .join('\n')
    .trimEnd()
}

function colorDiff(diff: string, color: boolean): string {
  if (!color) return diff
  return diff
    .split('\n')
    .map((line) => {
      if (line.startsWith('+++') || line.startsWith('---')) return paint(true, 'bold', line)
      if (line.startsWith('+')) return paint(true, 'green', line)
      if (line.startsWith('-')) return paint(true, 'red', line)
      if (line.startsWith('@@')) return paint(true, 'cyan', line)
      return line
    })
    .join('\n')
}

export function formatTable(headers: readonly string[], rawRows: ReadonlyArray<readonly string[]>): string {
  const rows = rawRows.map((row) => row.map((cell) => neutralise(cell)))
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`
}

/** A warning line for stderr: the command still succeeds. */
export function formatWarning(message: string, options: {color: boolean}): string {
  return `${paint(options.color, 'yellow', 'Warning:')} ${message}\n`
}

/** A cycle of services as people write it: `api → web → api`. */
export function formatCycle(cycle: readonly string[]): string {
  return cycle.join(' → ')
}
