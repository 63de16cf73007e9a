import {Args} from '@oclif/core'

import {packerRun} from '../../actions/packer.js'
import type {ApplyResult} from '../../actions/update.js'
import {StackCommand, stackFlags} from '../../stack-command.js'
import {describeBake} from '../../ui/outcomes.js'

export default class PackerRun extends StackCommand {
  static override summary = "Bake the group's AMI with Packer, through the group's Pulumi stack."
  static override description = `Regenerates packer/GROUP.pkr.json (packer/GROUP.ENV.pkr.json in an environment, whose stack is GROUP.ENV), records "bake" in the stack's config and updates only the bake part: a command resource that runs packer build, replaced only when the template's hash, the hash of the cookbooks its run list uses or (from_base groups) the project's newest __base__ image changed — an unchanged group is not rebaked. With no GROUP, __base__ is baked too when a group builds from it, first, and the groups built from it after it. The AMI id is a stack output. Afterwards the group's AMIs beyond the recorded number to keep (packer:clean -n, default 10) are retired. Packer reads AWS credentials from the environment.`
  static override examples = [
    {description: 'Preview, confirm, bake', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Without a terminal (CI)', command: '<%= config.bin %> <%= command.id %> 12_04-bee --yes'},
    {description: 'Every baked group (__base__ first when a group builds from it), two at a time', command: '<%= config.bin %> <%= command.id %> --parallel 2 --yes'},
    {description: 'Two groups; each gets its own outcome, and the exit is 1 if either failed', command: '<%= config.bin %> <%= command.id %> 12_04-bee 12_04-www --yes --json'},
    {description: 'Only show whether a bake would run', command: '<%= config.bin %> <%= command.id %> 12_04-bee --preview'},
    {description: "In an environment: bake staging's image (stack 12_04-bee.staging), to promote it to production once tested", command: '<%= config.bin %> <%= command.id %> 12_04-bee --env staging --yes'},
  ]
  static override strict = false
  static override args = {groups: Args.string({description: 'Node groups (default: every baked group).'})}
  static override flags = stackFlags

  public async run(): Promise<ApplyResult> {
    const {argv, flags} = await this.parse(PackerRun)
    const groups = (argv as string[]).filter(Boolean)
    const result = await packerRun({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, groups: groups.length > 0 ? groups : undefined, previewOnly: flags.preview, parallel: flags.parallel}, this.host(flags))
    this.report(result, flags.preview ? undefined : describeBake)
    return result
  }
}
