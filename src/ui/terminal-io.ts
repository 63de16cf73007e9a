// The StackIO of a person at a terminal: progress and streamed engine output on stderr, previews
// before the question, and a y/N question only when there is a terminal to answer it.
import {createInterface} from 'node:readline/promises'

import type {StackIO} from '../stacks/service.js'
import {formatChangeSet} from './changes.js'
import {paint} from './format.js'

export function terminalIO(): StackIO {
  const color = Boolean(process.stderr.isTTY) && !process.env.NO_COLOR
  return {
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    progress: (line) => process.stderr.write(`${paint(color, 'dim', line)}\n`),
    stream: (group, line) => process.stderr.write(`${paint(color, 'cyan', `${group} |`)} ${line}\n`),
    showPreview: (sets) => {
      for (const set of sets) process.stderr.write(formatChangeSet(set, color))
    },
    confirm: async (question) => {
      const rl = createInterface({input: process.stdin, output: process.stderr})
      try {
        return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim())
      } finally {
        rl.close()
      }
    },
  }
}

