import {Args, Flags} from '@oclif/core'

import {destroy} from '../actions/stack.js'
import {stackFlags, StackCommand} from '../stack-command.js'
import type {ChangeSet} from '../stacks/changes.js'

export default class Destroy extends StackCommand {
  static override summary = "Tear down every resource of a group's stack, after a preview and a confirmation."
  static override description = `Deletes the group's Auto Scaling group, launch template, instances and bake record. Baked AMIs stay (packer:delete removes them). Without a terminal it needs --yes.
GROUP may also name an orphan stack, one whose group is gone from the nodes file (muster preview and muster status list them): destroy then takes down what that stack recorded.`
  static override examples = [
    {description: 'See what would go', command: '<%= config.bin %> <%= command.id %> 12_04-bee --preview'},
    {description: 'Destroy and forget the stack', command: '<%= config.bin %> <%= command.id %> 12_04-bee --yes --remove'},
    {description: "In an environment: staging's stack of the group (12_04-bee.staging)", command: '<%= config.bin %> <%= command.id %> 12_04-bee --env staging --preview'},
    {description: 'Take down the stack of a group removed from the nodes file', command: '<%= config.bin %> <%= command.id %> old-group --remove'},
  ]
  static override args = {group: Args.string({description: 'Node group, or an orphan stack.', required: true})}
  static override flags = {
    nodes: stackFlags.nodes,
    env: stackFlags.env,
    yes: stackFlags.yes,
    preview: stackFlags.preview,
    remove: Flags.boolean({description: 'Also remove the empty stack and its stacks/Pulumi.GROUP.yaml (Pulumi.GROUP.ENV.yaml in an environment).'}),
  }

  public async run(): Promise<ChangeSet> {
    const {args, flags} = await this.parse(Destroy)
    const result = await destroy({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, previewOnly: flags.preview, remove: flags.remove}, this.host(flags))
    if (!this.jsonEnabled() && !flags.preview) this.log(`${args.group}: destroyed`)
    return result
  }
}
