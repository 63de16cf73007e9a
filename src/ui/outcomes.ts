// The account of a run over several groups: one line per group, ok or failed, so no group's
// result is lost to another's failure.
import type {GroupOutcome} from '../actions/update.js'
import {paint} from './format.js'

/** A failed group: its name, its error and the next step, for stderr. */
export function formatFailedOutcome(outcome: GroupOutcome, color: boolean): string {
  const message = (outcome.error?.message ?? 'failed').split('\n').join('\n    ')
  const hint = outcome.error?.hint ? `\n  ${paint(color, 'dim', `→ ${outcome.error.hint}`)}` : ''
  return `${paint(color, 'red', `${outcome.group}: failed:`)} ${message}${hint}\n`
}

/** packer:run's line for a group: what the run did to its image. */
export function describeBake(outcome: GroupOutcome): string {
  const ami = typeof outcome.outputs?.ami === 'string' ? outcome.outputs.ami : ''
  const bake = outcome.done?.changes.find((c) => c.name === 'packer-build' && (c.op === 'create' || c.op === 'replace'))
  if (bake && outcome.outputs?.adopted === true) return `${outcome.group}: adopted ${ami}, the image an interrupted bake had finished (no new bake)`
  if (bake) return `${outcome.group}: baked ${ami}`
  return `${outcome.group}: ${ami ? `${ami} is current, ` : ''}not rebaked`
}
