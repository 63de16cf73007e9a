// Pure text rendering: data in, text out. Commands print what these return.
import {UserError} from '../errors.js'
import type {WriteReport, WriteResult} from '../artifacts/writer.js'

const codes = {red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1} as const
export type Color = keyof typeof codes

export function paint(enabled: boolean, color: Color, text: string): string {
  return enabled ? `\u001B[${codes[color]}m${text}\u001B[0m` : text
}

export function formatError(error: Error, options: {bug: boolean; verbose: boolean; color: boolean}): string {
  const lines = [`${paint(options.color, 'red', 'Error:')} ${error.message}`]
  if (error instanceof UserError && error.hint) lines.push(`${paint(options.color, 'dim', '→')} ${error.hint}`)
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
    if (options.diffs && result.diff) lines.push(colorDiff(stripPatchHeader(result.diff), options.color))
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

export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
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
