import {Args} from '@oclif/core'

import {MusterCommand} from '../../base-command.js'
import {registryTarget} from '../../actions/registry-target.js'
import {readRegistry, type ServiceRow} from '../../registry/read.js'
import {registryFlags, registryScopeFlags} from '../../registry-flags.js'
import {formatServiceRows} from '../../ui/registry.js'

export default class ServiceLs extends MusterCommand {
  static override summary = 'List the services registered in the registry and where each runs.'
  static override description = 'One row per service per node: node, group, address, port and since when. Reads one snapshot of /muster/PROJECT/services/.'
  static override examples = [
    {description: 'Every service', command: '<%= config.bin %> <%= command.id %> --etcd http://127.0.0.1:2379'},
    {description: 'The services of production only (environments never see each other\'s)', command: '<%= config.bin %> <%= command.id %> --env production'},
    {description: 'Where api runs, as JSON', command: "<%= config.bin %> <%= command.id %> api --json | jq -r '.[] | \"\\(.address):\\(.port)\"'"},
  ]
  static override enableJsonFlag = true
  static override args = {service: Args.string({description: 'Only this service.'})}
  static override flags = {...registryFlags, ...registryScopeFlags}

  public async run(): Promise<ServiceRow[]> {
    const {args, flags} = await this.parse(ServiceLs)
    const target = await registryTarget(flags, process.env, process.cwd())
    const read = await readRegistry(target)
    const rows = args.service === undefined ? read.services : read.services.filter((r) => r.service === args.service)
    if (!this.jsonEnabled()) process.stdout.write(formatServiceRows(rows, args.service))
    return rows
  }
}
