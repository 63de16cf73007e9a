import {Args} from '@oclif/core'

import {UserError} from '../../errors.js'
import type {Group} from '../../nodes/model.js'
import {StackCommand, stackFlags} from '../../stack-command.js'
import type {ApplyResult} from '../../stacks/service.js'

export default class PackerRun extends StackCommand {
  static override summary = "Bake the group's AMI with Packer, through the group's Pulumi stack."
  static override description = `Regenerates packer/GROUP.pkr.json, records "bake" in the stack's config and updates only the bake part: a command resource that runs packer build, replaced only when the template's or the cookbooks' hash changed — an unchanged group is not rebaked. The AMI id is a stack output. Afterwards the group's AMIs beyond the recorded number to keep (packer:clean -n, default 10) are retired. Packer reads AWS credentials from the environment.`
  static override examples = [
    {description: 'Preview, confirm, bake', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Without a terminal (CI)', command: '<%= config.bin %> <%= command.id %> 12_04-bee --yes'},
    {description: 'Every baked group, two at a time', command: '<%= config.bin %> <%= command.id %> --parallel 2 --yes'},
    {description: 'Only show whether a bake would run', command: '<%= config.bin %> <%= command.id %> 12_04-bee --preview'},
  ]
  static override args = {group: Args.string({description: 'Node group (default: every baked group).'})}
  static override flags = stackFlags

  public async run(): Promise<ApplyResult> {
    const {args, flags} = await this.parse(PackerRun)
    const result = await this.apply({
      nodesPath: flags.nodes,
      groups: args.group ? [args.group] : undefined,
      applies: (g) => g.packer !== false,
      check: refuseUnbaked,
      change: (intent) => ({...intent, bake: true}),
      parts: ['bake', 'retention'],
      yes: flags.yes,
      previewOnly: flags.preview,
      parallel: flags.parallel,
    })
    if (!this.jsonEnabled()) {
      for (const g of result.groups) {
        if (!flags.preview) this.log(`${g.group}: ${g.applied ? 'baked' : 'unchanged, not rebaked'} ${String(g.outputs?.ami ?? '')}`.trimEnd())
      }
    }
    return result
  }
}

export function refuseUnbaked(group: Group): void {
  if (group.packer === false) {
    throw new UserError(`group ${group.name} has packer: false, so it is never baked`, {hint: 'It boots from source_ami; remove "packer": false to bake it.'})
  }
}
