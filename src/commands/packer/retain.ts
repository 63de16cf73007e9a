import {Args, Flags} from '@oclif/core'

import {retainImages} from '../../actions/packer.js'
import type {RetentionResult} from '../../aws/retention.js'
import {MusterCommand, envFlag, nodesFlag} from '../../base-command.js'
import {formatRetention, formatRetentionSummary} from '../../ui/retention.js'

export default class PackerRetain extends MusterCommand {
  static override hidden = true
  static override summary = "Keep a group's newest N AMIs and those in use; deregister the rest and delete their snapshots."
  static override description = `What the retention part of a group's stack runs after each bake and for packer:clean; run it by hand only to repair. Images are the account's AMIs tagged muster:group=GROUP and muster:project=PROJECT (the name in Pulumi.yaml) in the group's region; legacy images (the group tag alone) are listed as such and never touched (packer:adopt takes them in). An image a launch template version, an Auto Scaling group or a non-terminated instance uses is never removed, however old. Prints one line per image: kept or removed, and why. Credentials and endpoint (AWS_ENDPOINT_URL) come from the environment.`
  static override examples = [
    {description: 'Keep the newest 10 images of a group', command: '<%= config.bin %> <%= command.id %> 12_04-bee --keep 10'},
    {description: 'Only list what would go', command: '<%= config.bin %> <%= command.id %> 12_04-bee --keep 3 --dry-run'},
  ]
  static override enableJsonFlag = true
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {
    nodes: nodesFlag,
    env: envFlag,
    keep: Flags.integer({char: 'n', description: 'How many of the newest images to keep (images in use are kept besides).', required: true, min: 1, helpValue: 'N'}),
    'dry-run': Flags.boolean({description: 'Change nothing; list what would be removed.'}),
  }

  public async run(): Promise<RetentionResult> {
    const {args, flags} = await this.parse(PackerRetain)
    const [result] = await retainImages({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, keep: flags.keep, dryRun: flags['dry-run']}, this.host())
    if (!result) throw new Error('retention returned no result for the group')
    if (!this.jsonEnabled()) {
      process.stdout.write(formatRetention([result], {color: this.stdoutColor}))
      process.stderr.write(formatRetentionSummary(result))
    }
    // The stack's retention command fails its update when something could not be removed.
    if (result.failures.length > 0) process.exitCode = 1
    return result
  }
}
