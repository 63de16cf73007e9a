// A verb muster does not have: say so, suggest the closest one, and exit with a usage code (64,
// EX_USAGE) that cannot be mistaken for preview's 2 ("changes") or a failed run's 1.
import type {Hook, Interfaces} from '@oclif/core'

import {didYouMean} from '../nodes/validate.js'
import {neutralise} from '../ui/format.js'

export const USAGE_EXIT_CODE = 64

/**
 * Says a verb is unknown (with the closest verb, or topic, when one is close) and exits 64. `rest`
 * is the argv after it: a guessed topic followed by a word guesses the verb (`pakcer create`).
 */
export function refuseUnknownVerb(config: Interfaces.Config, id: string, rest: readonly string[], exit: (code: number) => void, typed = id): void {
  const separator = config.topicSeparator
  const shown = (verb: string): string => verb.replaceAll(':', separator)
  const verbs = config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases])
  const topics = config.topics.filter((t) => !t.hidden).map((t) => t.name)
  let guess = didYouMean(id, [...verbs, ...topics])
  const next = rest.find((word) => !word.startsWith('-'))
  if (guess !== undefined && topics.includes(guess) && !verbs.includes(guess) && next !== undefined) {
    guess = didYouMean(`${guess}:${next}`, verbs) ?? guess
  }
  const what = neutralise(typed === id ? shown(id) : typed)
  const lines = [`Error: "${what}" is not a ${config.bin} command${guess ? `; did you mean "${shown(guess)}"?` : ''}`]
  lines.push(`→ Run "${config.bin} help" for the list of commands${guess ? `, or "${config.bin} help ${shown(guess)}" for that one` : ''}.`)
  process.stderr.write(`${lines.join('\n')}\n`)
  exit(USAGE_EXIT_CODE)
}

const hook: Hook<'command_not_found'> = async function (options) {
  refuseUnknownVerb(options.config, options.id, options.argv ?? [], (code) => this.exit(code))
}

export default hook
