import {Args, Flags} from '@oclif/core'

import {MusterCommand, envFlag, nodesFlag} from '../../base-command.js'
import {packerDelete, type PackerDeleteResult} from '../../actions/packer-delete.js'

export default class PackerDelete extends MusterCommand {
  static override summary = 'Delete every AMI of a group that will never be baked again, and its Packer template.'
  static override description = `Deregisters all the group's images this project baked (tagged muster:group=GROUP and muster:project=PROJECT, the name in Pulumi.yaml) and deletes their snapshots; another project's images are left alone, and legacy images (the group tag alone: see packer:adopt) are listed and left alone. It removes the bake part from the group's stack and deletes packer/GROUP.pkr.json. Nothing else: no Auto Scaling group, instance, role or dna is touched. Refuses while an image is in use (by a launch template, an Auto Scaling group or an instance) unless --force.`
  static override examples = [
    {description: 'See what would go', command: '<%= config.bin %> <%= command.id %> 12_04-bee --dry-run'},
    {description: 'Delete, without a terminal', command: '<%= config.bin %> <%= command.id %> 12_04-bee --yes'},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {
    nodes: nodesFlag,
    env: envFlag,
    force: Flags.boolean({description: 'Deregister images that are still in use too (running instances keep running).'}),
    yes: Flags.boolean({char: 'y', description: 'Delete without asking (required without a terminal).'}),
    'dry-run': Flags.boolean({description: 'Change nothing; list what would go.'}),
  }

  public async run(): Promise<PackerDeleteResult> {
    const {args, flags} = await this.parse(PackerDelete)
    const result = await packerDelete({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, force: flags.force, dryRun: flags['dry-run']}, this.host(flags))
    if (!this.jsonEnabled() && !flags['dry-run']) {
      this.log(`${args.group}: deregistered ${result.images.deregistered.length} image(s), deleted ${result.images.deletedSnapshots.length} snapshot(s), removed ${result.removedFiles.join(', ')}`)
    }
    return result
  }
}
