import {Args, Flags} from '@oclif/core'

import {StackCommand, stackFlags} from '../../stack-command.js'
import {autoscaleUpdate, type UpdateStrategy} from '../../actions/autoscale.js'
import type {ApplyResult} from '../../actions/update.js'

export default class AutoscaleUpdate extends StackCommand {
  static override summary = "Roll the group's nodes onto a new launch template version (new AMI, instance type, …)."
  static override description = `rolling (default): a new launch template version and an instance refresh (min healthy 90%, warm-up = autoscale.timeout).
blue-green, as the paper describes: a new Auto Scaling group beside the old one, wait until its instances are in service, keep the old one autoscale.timeout seconds so every other node has a chance to update, then retire it.`
  static override examples = [
    {description: 'Instance refresh', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Blue-green, unattended', command: '<%= config.bin %> <%= command.id %> 12_04-bee --strategy blue-green --yes'},
  ]
  static override args = {group: Args.string({description: 'Node group (default: every group with autoscale).'})}
  static override flags = {
    ...stackFlags,
    strategy: Flags.string({description: 'How to replace the nodes.', options: ['rolling', 'blue-green'], default: 'rolling'}),
  }

  public async run(): Promise<ApplyResult> {
    const {args, flags} = await this.parse(AutoscaleUpdate)
    const result = await autoscaleUpdate(
      {cwd: process.cwd(), nodesPath: flags.nodes, groups: args.group ? [args.group] : undefined, previewOnly: flags.preview, parallel: flags.parallel, strategy: flags.strategy as UpdateStrategy},
      this.host(flags),
    )
    if (!this.jsonEnabled() && !flags.preview) for (const g of result.groups) this.log(`${g.group}: ${g.applied ? 'updated' : 'up to date'} ${String(g.outputs?.asgName ?? '')}`.trimEnd())
    return result
  }
}
