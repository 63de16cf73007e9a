import {Args} from '@oclif/core'

import {MusterCommand} from '../../base-command.js'
import {cancelDeploy, type DeployCancelData} from '../../actions/deploy-follow.js'
import {registryTarget} from '../../actions/registry-target.js'
import {openEtcd} from '../../registry/etcd.js'
import {registryFlags, registryScopeFlags} from '../../registry-flags.js'
import {formatCancel} from '../../ui/deploy.js'

export default class DeployCancel extends MusterCommand {
  static override summary = 'Stop a deploy: no further node starts; runs already going finish.'
  static override description = `Writes the deploy's stop key (reason "cancelled"): agents take no further slot, so nodes that have not started never do. A node already provisioning finishes its run. Cancelling a deploy that has stopped already (cancelled, timed out, too many failures) or whose nodes have all finished changes nothing and says so; the exit is 0 either way. It lists the nodes still running.`
  static override examples = [
    {description: 'Cancel a deploy', command: '<%= config.bin %> <%= command.id %> 20261125T193000Z-a1b2c3'},
    {description: 'Cancel a deploy in the production environment', command: '<%= config.bin %> <%= command.id %> 20261125T193000Z-a1b2c3 --env production'},
    {description: 'Cancel the newest deploy', command: "<%= config.bin %> <%= command.id %> \"$(<%= config.bin %> deploy:status --json | jq -r .id)\""},
  ]
  static override enableJsonFlag = true
  static override args = {id: Args.string({description: 'Deploy id (deploy:status shows the newest).', required: true})}
  static override flags = {...registryFlags, ...registryScopeFlags}

  public async run(): Promise<DeployCancelData> {
    const {args, flags} = await this.parse(DeployCancel)
    const target = await registryTarget(flags, process.env, process.cwd())
    const store = openEtcd({endpoints: target.endpoints, callTimeoutMs: 3000, security: target.security})
    try {
      const result = await cancelDeploy(store, target.project, args.id)
      if (!this.jsonEnabled()) process.stdout.write(formatCancel(result))
      return result
    } finally {
      store.close()
    }
  }
}
