// A verb muster does not have: say so, suggest the closest one, and exit with a usage code (64,
// EX_USAGE) that cannot be mistaken for preview's 2 ("changes") or a failed run's 1.
import type {Hook} from '@oclif/core'

import {didYouMean} from '../nodes/validate.js'
import {neutralise} from '../ui/format.js'

export const USAGE_EXIT_CODE = 64

const hook: Hook<'command_not_found'> = async function (options) {
  const separator = options.config.topicSeparator
  const shown = (id: string): string => id.replaceAll(':', separator)
  const visible = options.config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases])
  const guess = didYouMean(options.id, visible)
  const what = neutralise(shown(options.id))
  const lines = [`Error: "${what}" is not a ${options.config.bin} command${guess ? `; did you mean "${shown(guess)}"?` : ''}`]
  lines.push(`→ Run "${options.config.bin} help" for the list of commands${guess ? `, or "${options.config.bin} help ${shown(guess)}" for that one` : ''}.`)
  process.stderr.write(`${lines.join('\n')}\n`)
  this.exit(USAGE_EXIT_CODE)
}

export default hook
