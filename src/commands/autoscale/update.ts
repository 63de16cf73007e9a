import {Args, Flags} from '@oclif/core'

import {StackCommand, stackFlags} from '../../stack-command.js'
import {autoscaleUpdate, type UpdateStrategy} from '../../actions/autoscale.js'
import type {ApplyResult} from '../../actions/update.js'
import {optionalRegistryTarget} from '../../actions/registry-target.js'
import {registryFlags} from '../../registry-flags.js'

export default class AutoscaleUpdate extends StackCommand {
  static override summary = "Roll the group's nodes onto a new launch template version (new AMI, instance type, …)."
  static override description = `rolling (default): a new launch template version and an instance refresh (min healthy 90%, warm-up = autoscale.timeout).
blue-green, as the paper describes: a new Auto Scaling group beside the old one, wait until its instances are in service and, given the registry (--etcd or MUSTER_ETCD_ENDPOINTS), until every one of them has registered all of its group's services (an agent registers a service only while its health check passes). Past autoscale.timeout it rolls back: the new group goes, the old one stays, the command fails naming the instances and the services they lacked. Otherwise the old nodes are retired (retire/NODE in the registry: their agents deregister, wait for dependents to let go, report retired) and only then is the old group removed.
Without registry settings it waits only for InService and keeps the old group autoscale.timeout seconds before removing it.`
  static override examples = [
    {description: 'Instance refresh', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Blue-green, unattended', command: '<%= config.bin %> <%= command.id %> 12_04-bee --strategy blue-green --yes'},
    {description: 'Blue-green gated on the registry (the operator user may write retire keys)', command: 'MUSTER_ETCD_PASSWORD=… <%= config.bin %> <%= command.id %> 12_04-bee --strategy blue-green --etcd https://10.0.0.5:2379 --etcd-ca ca.pem --etcd-user muster-shop-operator'},
  ]
  static override args = {group: Args.string({description: 'Node group (default: every group with autoscale).'})}
  static override flags = {
    ...stackFlags,
    ...registryFlags,
    strategy: Flags.string({description: 'How to replace the nodes.', options: ['rolling', 'blue-green'], default: 'rolling'}),
  }

  public async run(): Promise<ApplyResult> {
    const {args, flags} = await this.parse(AutoscaleUpdate)
    const strategy = flags.strategy as UpdateStrategy
    // The registry gates a blue-green update only when it is configured; without it, InService only.
    // In an environment, its registry project (and its endpoints from the nodes file when none are given).
    const registry = strategy === 'blue-green' ? await optionalRegistryTarget(flags, process.env, process.cwd()) : undefined
    const result = await autoscaleUpdate(
      {cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, groups: args.group ? [args.group] : undefined, previewOnly: flags.preview, parallel: flags.parallel, strategy, registry},
      this.host(flags),
    )
    if (!this.jsonEnabled() && !flags.preview) for (const g of result.groups) this.log(`${g.group}: ${g.applied ? 'updated' : 'up to date'} ${String(g.outputs?.asgName ?? '')}`.trimEnd())
    return result
  }
}
