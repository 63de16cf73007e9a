// Retention results as text: one line per image (what happened to it and why), for packer:retain,
// packer:clean --dry-run and packer:delete. Pure.
import type {PlannedImage, RetentionReason, RetentionResult} from '../aws/retention.js'
import {type Color, paint} from './format.js'

export function reasonText(reason: RetentionReason, keep: number | undefined): string {
  switch (reason) {
    case 'newest':
      return `among the newest ${keep ?? '?'}`
    case 'in-use':
      return 'in use'
    case 'pending':
      return 'still being created'
    case 'older':
      return `older than the newest ${keep ?? '?'}`
    case 'failed':
      return 'failed image'
    case 'delete':
      return 'every image of the group goes'
  }
}

interface Row {
  status: string
  color: Color
  cells: string[]
}

/** One line per image, aligned: GROUP  STATUS  AMI  NAME  CREATED  REASON. */
export function formatRetention(results: readonly RetentionResult[], options: {color: boolean}): string {
  const rows: Row[] = []
  for (const result of results) {
    const failed = new Map(result.failures.map((f) => [f.id, f.message]))
    const row = (image: PlannedImage, status: string, color: Color, extra: string[] = []): void => {
      const reason = [reasonText(image.reason, result.keep), ...extra].join('; ')
      rows.push({status, color, cells: [result.group, status, image.id, image.name || '-', image.created || '-', reason]})
    }
    for (const image of result.kept) {
      // "in use by production": the environments whose machines or stacks use it, named first.
      const environments = [...new Set(image.usedBy.flatMap((u) => (u.environment === undefined ? [] : [u.environment])))]
      const by = environments.length > 0 ? [`in use by ${environments.join(', ')}`] : []
      row(image, 'kept', 'dim', image.usedBy.length > 0 ? [...by, `used by ${image.usedBy.map((u) => u.description).join(', ')}`] : [])
    }
    for (const image of result.removed) {
      const snapshots = image.snapshotIds.length > 0 ? [`snapshots ${image.snapshotIds.join(', ')}`] : []
      const used = image.usedBy.length > 0 ? [`was used by ${image.usedBy.map((u) => u.description).join(', ')}`] : []
      if (result.dryRun) row(image, 'would remove', 'yellow', [...used, ...snapshots])
      else if (failed.has(image.id)) row(image, 'failed', 'red', [`${failed.get(image.id) ?? ''}`])
      else {
        const leftSnapshots = image.snapshotIds.filter((s) => failed.has(s)).map((s) => `snapshot ${s} not deleted: ${failed.get(s) ?? ''}`)
        row(image, 'removed', leftSnapshots.length > 0 ? 'red' : 'green', [...used, ...snapshots, ...leftSnapshots])
      }
    }
    // Listed so nobody wonders where they went: never touched (see packer:adopt).
    for (const image of result.legacy) {
      rows.push({status: 'legacy', color: 'yellow', cells: [result.group, 'legacy', image.id, image.name || '-', image.created || '-', legacyReason(result.group)]})
    }
  }
  if (rows.length === 0) return ''
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => (r.cells[i] ?? '').length)))
  const lines = rows.map((r) =>
    r.cells
      .map((cell, i) => {
        const padded = i < widths.length ? cell.padEnd(widths[i] ?? 0) : cell
        return i === 1 ? paint(options.color, r.color, padded) : padded
      })
      .join('  ')
      .trimEnd(),
  )
  return `${lines.join('\n')}\n`
}

/** Why a legacy image is listed and left alone, and how to take it in. */
export function legacyReason(group: string): string {
  return `untagged legacy image (muster:group, no muster:project): not ours to touch; adopt it with muster packer:adopt ${group}`
}

/** One line per group for stderr: counts, or that the group has no images. */
export function formatRetentionSummary(result: RetentionResult): string {
  const legacy = result.legacy.length
  const others = result.otherProjects
  const aside = [
    ...(legacy > 0 ? [`${legacy} untagged legacy image${legacy === 1 ? '' : 's'} left alone (muster packer:adopt ${result.group} takes them in)`] : []),
    ...(others > 0 ? [`${others} image${others === 1 ? '' : 's'} of other projects or environments left alone`] : []),
  ]
  return `${summaryOf(result)}${aside.length > 0 ? `; ${aside.join('; ')}` : ''}\n`
}

function summaryOf(result: RetentionResult): string {
  const total = result.kept.length + result.removed.length
  if (total === 0) return `${result.group}: no images of project ${result.project} tagged muster:group=${result.group}`
  const snapshots = result.removed.reduce((n, i) => n + i.snapshotIds.length, 0)
  if (result.dryRun) return `${result.group}: ${result.kept.length} kept, ${result.removed.length} would be removed (with ${snapshots} snapshot${snapshots === 1 ? '' : 's'}); dry run, nothing changed`
  const failed = result.failures.length > 0 ? `, ${result.failures.length} could not be removed` : ''
  return `${result.group}: ${result.kept.length} kept, ${result.deregistered.length} deregistered, ${result.deletedSnapshots.length} snapshot${result.deletedSnapshots.length === 1 ? '' : 's'} deleted${failed}`
}
