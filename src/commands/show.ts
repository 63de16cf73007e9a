import {Args} from '@oclif/core'

import {MusterCommand, nodesFlag} from '../base-command.js'
import {loadNodes} from '../nodes/load.js'
import {type Group, requireGroup} from '../nodes/model.js'

export default class Show extends MusterCommand {
  static override summary = 'Show a group as resolved: after inheritance from __base__ and defaults.'
  static override description = 'Keys are the nodes file\'s own; lists appear merged (parent first, each recipe once) and dicts merged at level 1.'
  static override examples = [
    {description: 'Read a group', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'As JSON, for scripts', command: "<%= config.bin %> <%= command.id %> 12_04-bee --json | jq '.run_list'"},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {nodes: nodesFlag}

  public async run(): Promise<Group> {
    const {args, flags} = await this.parse(Show)
    const group = requireGroup(loadNodes({cwd: process.cwd(), path: flags.nodes}), args.group)
    // yaml is loaded only for the human form: --json is the hot path scripts use.
    if (!this.jsonEnabled()) process.stdout.write((await import('yaml')).stringify(group))
    return group
  }
}
