// Shared flags of the verbs that change stacks: preview first, ask (or --yes,
// required without a TTY), --preview to stop after previewing, --parallel for many groups.
import {Flags} from '@oclif/core'

import type {ApplyResult, GroupOutcome} from './actions/update.js'
import {MusterCommand, envFlag, nodesFlag} from './base-command.js'
import {colorFor} from './ui/io-host.js'
import {formatFailedOutcome} from './ui/outcomes.js'

export const stackFlags = {
  nodes: nodesFlag,
    env: envFlag,
  yes: Flags.boolean({char: 'y', description: 'Apply without asking (required when there is no terminal).'}),
  preview: Flags.boolean({description: 'Only preview: show what would change and change nothing.'}),
  parallel: Flags.integer({description: 'How many groups to work on at once (default: the number of cores).', min: 1}),
}

export abstract class StackCommand extends MusterCommand {
  static override enableJsonFlag = true
  protected override readonly interruptible: boolean = true

  /**
   * Every group's outcome: a line on stdout per group that succeeded, its error on stderr per group
   * that failed (the JSON result carries both); exit 1 when any failed.
   */
  protected report(result: ApplyResult, line: ((outcome: GroupOutcome) => string) | undefined): void {
    if (!this.jsonEnabled()) {
      for (const outcome of result.groups) {
        if (outcome.status !== 'ok') process.stderr.write(formatFailedOutcome(outcome, colorFor(process.stderr)))
        else if (line) this.log(line(outcome))
      }
    }
    if (result.groups.some((g) => g.status !== 'ok')) process.exitCode = 1
  }
}
