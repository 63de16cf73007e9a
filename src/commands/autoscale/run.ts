import {Args} from '@oclif/core'

import {StackCommand, stackFlags} from '../../stack-command.js'
import {autoscaleRun} from '../../actions/autoscale.js'
import type {ApplyResult} from '../../actions/update.js'

export default class AutoscaleRun extends StackCommand {
  static override summary = "Start the group's Auto Scaling group (tagged group:GROUP) through its stack."
  static override description = `Records "fleet" in the stack's config and updates only the fleet part: a launch template (newest baked AMI, or source_ami for a group that is not baked; IMDSv2 required; encrypted root volume; user data that writes the dna and role, runs chef-solo and starts the agent) and an Auto Scaling group sized by the group's autoscale (desired = node_min) over the region's default-VPC subnets unless the group names subnets. Refuses when an Auto Scaling group tagged for the group exists outside this stack.`
  static override examples = [
    {description: 'Preview, confirm, create', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Every autoscaled group, in CI', command: '<%= config.bin %> <%= command.id %> --yes'},
    {description: 'Two groups', command: '<%= config.bin %> <%= command.id %> 12_04-bee 12_04-www --yes'},
  ]
  static override strict = false
  static override args = {groups: Args.string({description: 'Node groups (default: every group with autoscale).'})}
  static override flags = stackFlags

  public async run(): Promise<ApplyResult> {
    const {argv, flags} = await this.parse(AutoscaleRun)
    const groups = (argv as string[]).filter(Boolean)
    const result = await autoscaleRun({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, groups: groups.length > 0 ? groups : undefined, previewOnly: flags.preview, parallel: flags.parallel}, this.host(flags))
    this.report(result, flags.preview ? undefined : (g) => `${g.group}: ${String(g.outputs?.asgName ?? '')}`)
    return result
  }
}
