// Rendering of stack previews: a terminal summary before a verb asks, and Markdown for a pull request.
import type {ChangeSet} from '../stacks/changes.js'
import {paint} from './format.js'

const symbol: Record<string, string> = {create: '+', update: '~', replace: '+-', delete: '-', read: '>', same: ' ', other: '?'}

export function formatCounts(set: ChangeSet): string {
  const parts = (['create', 'update', 'replace', 'delete'] as const).filter((op) => set.counts[op] > 0).map((op) => `${set.counts[op]} to ${op}`)
  return parts.length > 0 ? parts.join(', ') : 'no changes'
}

const DONE: Record<'create' | 'update' | 'replace' | 'delete', string> = {create: 'created', update: 'updated', replace: 'replaced', delete: 'deleted'}

/** What an update did: "created 4, replaced 1", or "nothing changed". */
export function formatDoneCounts(set: ChangeSet): string {
  const parts = (['create', 'update', 'replace', 'delete'] as const).filter((op) => set.counts[op] > 0).map((op) => `${DONE[op]} ${set.counts[op]}`)
  return parts.length > 0 ? parts.join(', ') : 'nothing changed'
}

/** A preview (what would change) or, with done, the account of an update (what changed). */
export function formatChangeSet(set: ChangeSet, color: boolean, options: {done?: boolean} = {}): string {
  const lines = [`${paint(color, 'bold', set.stack)}: ${options.done ? formatDoneCounts(set) : formatCounts(set)}`]
  for (const change of set.changes.filter((c) => c.op !== 'same' && c.op !== 'read')) {
    const tint = change.op === 'create' ? 'green' : change.op === 'delete' ? 'red' : 'yellow'
    const props = change.properties.length > 0 ? ` (${change.properties.join(', ')})` : ''
    lines.push(`  ${paint(color, tint, (symbol[change.op] ?? '?').padEnd(2))} ${change.type} ${change.name}${props}`)
  }
  return `${lines.join('\n')}\n`
}

const escapeCell = (s: string): string => s.replaceAll('|', '\\|')

/**
 * A summary a pull request can carry: one table of counts, then the changed resources per group.
 * In an environment the heading names it and each row the stack (GROUP.ENV), so a reviewer never
 * mistakes staging's preview for production's.
 */
export function formatMarkdown(sets: readonly ChangeSet[], errors: ReadonlyArray<{stack: string; message: string}> = [], options: {environment?: string | undefined} = {}): string {
  const heading = options.environment === undefined ? ['## muster preview'] : [`## muster preview: environment \`${options.environment}\``, '', `Stacks of the **${options.environment}** environment (\`GROUP.${options.environment}\`).`]
  const lines = [...heading, '', `| ${options.environment === undefined ? 'group' : 'stack'} | create | update | replace | delete |`, '|---|---:|---:|---:|---:|']
  for (const set of sets) lines.push(`| ${escapeCell(set.stack)} | ${set.counts.create} | ${set.counts.update} | ${set.counts.replace} | ${set.counts.delete} |`)
  for (const error of errors) lines.push(`| ${escapeCell(error.stack)} | error | | | |`)
  for (const set of sets) {
    const changed = set.changes.filter((c) => c.op !== 'same' && c.op !== 'read')
    if (changed.length === 0) continue
    lines.push('', `### ${set.stack}`, '', '| | resource | type | changed properties |', '|---|---|---|---|')
    for (const c of changed) lines.push(`| ${c.op} | \`${escapeCell(c.name)}\` | \`${escapeCell(c.type)}\` | ${c.properties.map((p) => `\`${escapeCell(p)}\``).join(', ')} |`)
  }
  for (const error of errors) lines.push('', `### ${error.stack}: error`, '', '```', error.message, '```')
  return `${lines.join('\n')}\n`
}
