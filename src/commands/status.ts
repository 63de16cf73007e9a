import {Args} from '@oclif/core'

import {MusterCommand, envFlag, nodesFlag} from '../base-command.js'
import {status, type StatusResult} from '../actions/status.js'
import {optionalRegistryTarget} from '../actions/registry-target.js'
import {registryFlags} from '../registry-flags.js'
import {formatStatus} from '../ui/status.js'

export default class Status extends MusterCommand {
  static override summary = 'What runs, per group: newest AMI, Auto Scaling counts, nodes, release and last deploy.'
  static override description = `The view to open first. For each group (or GROUP): the newest AMI and how many the group has (and keeps), each Auto Scaling group tagged for it with its desired and in-service counts (marked when the stack does not manage it), and, when a registry is given (--etcd or MUSTER_ETCD_ENDPOINTS), the nodes registered and healthy (last provision ok), the current release (groups/GROUP/release) and the newest deploy that included the group with its outcome counts. Without a registry those columns say unknown; a source that cannot be read says why in its column and the rest is still shown. Then the orphan stacks: stacks whose group is gone from the nodes file (muster destroy NAME takes one down). Reads only.`
  static override examples = [
    {description: 'Every group, stacks and AWS only', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'One group, with the registry', command: '<%= config.bin %> <%= command.id %> 12_04-bee --etcd http://10.0.0.5:2379'},
    {description: 'The full digest of the release staging runs (to promote it: instance:deploy --env production --release DIGEST)', command: "<%= config.bin %> <%= command.id %> 12_04-bee --env staging --json | jq -r '.groups[0].registry.release'"},
    {description: 'Groups whose last deploy failed', command: "<%= config.bin %> <%= command.id %> --json | jq -r '.groups[] | select(.registry.lastDeploy.ok == false) | .group'"},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Only this group (or orphan stack).'})}
  static override flags = {nodes: nodesFlag,
    env: envFlag, ...registryFlags}

  public async run(): Promise<StatusResult> {
    const {args, flags} = await this.parse(Status)
    // In an environment, its registry project (and the nodes file's endpoints for it when none are given).
    const registry = await optionalRegistryTarget(flags, process.env, process.cwd())
    const result = await status({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, registry}, this.host())
    if (!this.jsonEnabled()) process.stdout.write(formatStatus(result))
    return result
  }
}
