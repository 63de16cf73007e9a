import {Args} from '@oclif/core'

import {MusterCommand} from '../../base-command.js'
import {registryTarget} from '../../actions/registry-target.js'
import {type NodeRow, readRegistry} from '../../registry/read.js'
import {registryFlags, registryScopeFlags} from '../../registry-flags.js'
import {formatNodeRows} from '../../ui/registry.js'

export default class NodeLs extends MusterCommand {
  static override summary = 'List the live nodes in the registry, their services and their last provision.'
  static override description = 'A node is live while its agent keeps its lease. The last provision shows ok or failed, when it finished, and the registry revision it reflected.'
  static override examples = [
    {description: 'Every live node', command: '<%= config.bin %> <%= command.id %> --etcd http://127.0.0.1:2379'},
    {description: 'The nodes of the staging environment (its own registry project, PROJECT.staging)', command: '<%= config.bin %> <%= command.id %> --env staging'},
    {description: 'Nodes of one group whose last provision failed', command: "<%= config.bin %> <%= command.id %> 12_04-bee --json | jq '.[] | select(.provision.ok == false)'"},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Only nodes of this group.'})}
  static override flags = {...registryFlags, ...registryScopeFlags}

  public async run(): Promise<NodeRow[]> {
    const {args, flags} = await this.parse(NodeLs)
    const target = await registryTarget(flags, process.env, process.cwd())
    const read = await readRegistry(target)
    const rows = args.group === undefined ? read.nodes : read.nodes.filter((r) => r.group === args.group)
    if (!this.jsonEnabled()) process.stdout.write(formatNodeRows(rows, args.group))
    return rows
  }
}
