import {Args} from '@oclif/core'

import {MusterCommand, envFlag, nodesFlag} from '../base-command.js'
import {loadNodes} from '../nodes/load.js'
import {type Group, requireGroup} from '../nodes/model.js'
import {dependenciesOf, type ServiceRef, servicesOf} from '../nodes/services.js'
import {neutraliseDeep} from '../ui/format.js'

export interface ShownGroup extends Group {
  /** The services the group's nodes run: recipe[C::S] of a service cookbook, with port and health check. */
  services_run: ServiceRef[]
  /** What its nodes depend on: its depends_on plus that of every service it runs, sorted. */
  depends_on_resolved: string[]
}

export default class Show extends MusterCommand {
  static override summary = 'Show a group as resolved: after inheritance from __base__ and defaults.'
  static override description = `Keys are the nodes file's own; lists appear merged (parent first, each recipe once) and dicts merged at level 1.

Two keys are derived: services_run, the services the group's nodes run (each recipe[C::S] whose cookbook C is named *-service or listed in service_cookbooks, with its port and health check), and depends_on_resolved, what its nodes depend on (the group's depends_on plus that of every service it runs).`
  static override examples = [
    {description: 'Read a group', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'The group as an environment sees it', command: '<%= config.bin %> <%= command.id %> 12_04-bee --env production'},
    {description: 'As JSON, for scripts', command: "<%= config.bin %> <%= command.id %> 12_04-bee --json | jq '.run_list'"},
    {description: 'The services a group runs', command: "<%= config.bin %> <%= command.id %> 12_04-bee --json | jq -r '.services_run[].name'"},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {nodes: nodesFlag, env: envFlag}

  public async run(): Promise<ShownGroup> {
    const {args, flags} = await this.parse(Show)
    const group = requireGroup(loadNodes({cwd: process.cwd(), path: flags.nodes, environment: flags.env}), args.group)
    const shown: ShownGroup = {...group, services_run: servicesOf(group), depends_on_resolved: dependenciesOf(group)}
    // yaml is loaded only for the human form: --json is the hot path scripts use.
    if (!this.jsonEnabled()) process.stdout.write((await import('yaml')).stringify(neutraliseDeep(shown)))
    return shown
  }
}
