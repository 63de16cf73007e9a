// Shared flags and terminal I/O of the verbs that change stacks: preview first, ask (or --yes,
// required without a TTY), --preview to stop after previewing, --parallel for many groups.
import {createInterface} from 'node:readline/promises'

import {Flags} from '@oclif/core'

import {MusterCommand, nodesFlag} from './base-command.js'
import {applyParts, type ApplyOptions, type ApplyResult, defaultParallel, type StackIO} from './stacks/service.js'
import {formatChangeSet} from './ui/changes.js'
import {paint} from './ui/format.js'

export const stackFlags = {
  nodes: nodesFlag,
  yes: Flags.boolean({char: 'y', description: 'Apply without asking (required when there is no terminal).'}),
  preview: Flags.boolean({description: 'Only preview: show what would change and change nothing.'}),
  parallel: Flags.integer({description: 'How many groups to work on at once (default: the number of cores).', min: 1}),
}

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

export abstract class StackCommand extends MusterCommand {
  static override enableJsonFlag = true

  protected async apply(options: Omit<ApplyOptions, 'cwd'>): Promise<ApplyResult> {
    return applyParts({...options, cwd: process.cwd(), parallel: options.parallel ?? defaultParallel()}, terminalIO())
  }
}
