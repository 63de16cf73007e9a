import {Args, Flags} from '@oclif/core'

import {packerPromote, type PromoteResult} from '../../actions/packer-promote.js'
import {MusterCommand, nodesFlag} from '../../base-command.js'
import {colorFor} from '../../ui/io-host.js'
import {formatFailedOutcome} from '../../ui/outcomes.js'
import {formatPromoted} from '../../ui/promote.js'

export default class PackerPromote extends MusterCommand {
  static override summary = "Make one environment's fleet run the exact AMI another environment runs, without a rebake."
  static override description = `Reads the AMI the --from environment's stack of GROUP runs (its ami output: run packer:run GROUP --env FROM first) and pins it in the --to environment's stack (muster:image in stacks/Pulumi.GROUP.TO.yaml, with where it came from). The --to stack then exports it as its ami and launches its fleet and instances from it; its own bake is off while the image is pinned (packer:run GROUP --env TO bakes its own again). When the two environments are in different regions, the AMI is copied across with EC2 CopyImage, its tags included plus muster:source-image and muster:source-region, and muster:environment saying TO (the copy is TO's image: its retention retires copies no stack pins any more); a copy made before (an earlier or interrupted promote) is found by those tags and reused. Shows the plan and the stack's preview first, then asks (or --yes). Retention never deregisters an image an environment has pinned.`
  static override examples = [
    {description: 'Preview, confirm, promote', command: '<%= config.bin %> <%= command.id %> 12_04-bee --from staging --to production'},
    {description: 'Without a terminal (CI)', command: '<%= config.bin %> <%= command.id %> 12_04-bee --from staging --to production --yes'},
    {description: 'Only show what would happen', command: '<%= config.bin %> <%= command.id %> 12_04-bee --from staging --to production --preview'},
  ]
  static override enableJsonFlag = true
  protected override readonly interruptible: boolean = true
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {
    nodes: nodesFlag,
    from: Flags.string({description: 'The environment whose image is promoted (it must have baked it).', required: true, helpValue: 'ENV'}),
    to: Flags.string({description: 'The environment that is to run it.', required: true, helpValue: 'ENV'}),
    yes: Flags.boolean({char: 'y', description: 'Promote without asking (required when there is no terminal).'}),
    preview: Flags.boolean({description: 'Only show the plan and the stack preview; change nothing.'}),
  }

  public async run(): Promise<PromoteResult> {
    const {args, flags} = await this.parse(PackerPromote)
    const result = await packerPromote({cwd: process.cwd(), nodesPath: flags.nodes, group: args.group, from: flags.from, to: flags.to, previewOnly: flags.preview}, this.host(flags))
    const failed = result.stack.groups.filter((g) => g.status !== 'ok')
    if (!this.jsonEnabled()) {
      for (const outcome of failed) process.stderr.write(formatFailedOutcome(outcome, colorFor(process.stderr)))
      if (!result.previewOnly && failed.length === 0) this.log(formatPromoted(result))
    }
    if (failed.length > 0) process.exitCode = 1
    return result
  }
}
