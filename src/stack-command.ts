// Shared flags of the verbs that change stacks: preview first, ask (or --yes,
// required without a TTY), --preview to stop after previewing, --parallel for many groups.
import {Flags} from '@oclif/core'

import {MusterCommand, nodesFlag} from './base-command.js'

export const stackFlags = {
  nodes: nodesFlag,
  yes: Flags.boolean({char: 'y', description: 'Apply without asking (required when there is no terminal).'}),
  preview: Flags.boolean({description: 'Only preview: show what would change and change nothing.'}),
  parallel: Flags.integer({description: 'How many groups to work on at once (default: the number of cores).', min: 1}),
}

export abstract class StackCommand extends MusterCommand {
  static override enableJsonFlag = true
}
