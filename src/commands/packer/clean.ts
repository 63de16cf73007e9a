import {Args, Flags} from '@oclif/core'

import {packerClean, retainImages} from '../../actions/packer.js'
import type {ApplyResult} from '../../actions/update.js'
import type {RetentionResult} from '../../aws/retention.js'
import {StackCommand, stackFlags} from '../../stack-command.js'
import {DEFAULT_KEEP} from '../../stacks/intent.js'
import {formatRetention, formatRetentionSummary} from '../../ui/retention.js'

export default class PackerClean extends StackCommand {
  static override summary = "Retire a group's old AMIs: keep the newest N and any in use."
  static override description = `Images are the account's AMIs tagged muster:group=GROUP and muster:project=PROJECT (the name in Pulumi.yaml) in the group's region; legacy images (the group tag alone) are listed and never touched (packer:adopt takes them in). The newest N stay, and so does every image a launch template version, an Auto Scaling group or a non-terminated instance uses, however old; the rest are deregistered and their snapshots deleted. N is recorded in the group's stack, whose retention part applies it now and again after every bake.

--dry-run asks AWS only and lists, one line per image, what would stay and what would go, and why; --preview shows the stack's preview. No GROUP means every baked group.`
  static override examples = [
    {description: 'See what keeping the newest 5 images would remove', command: '<%= config.bin %> <%= command.id %> 12_04-bee -n 5 --dry-run'},
    {description: 'Keep the newest 5 images of a group', command: '<%= config.bin %> <%= command.id %> 12_04-bee -n 5'},
    {description: "In an environment: staging's images only; an image any environment runs or pins is kept", command: '<%= config.bin %> <%= command.id %> 12_04-bee --env staging -n 5 --dry-run'},
    {description: 'Every baked group, as JSON', command: "<%= config.bin %> <%= command.id %> -n 5 --dry-run --json | jq '.[].removed[].id'"},
  ]
  static override enableJsonFlag = true
  static override strict = false
  static override args = {groups: Args.string({description: 'Node groups (default: every baked group).'})}
  static override flags = {
    ...stackFlags,
    keep: Flags.integer({char: 'n', description: 'How many of the newest images to keep (images in use are kept besides).', default: DEFAULT_KEEP, min: 1, helpValue: 'N'}),
    'dry-run': Flags.boolean({description: 'Change nothing, record nothing; list what would be removed and why.', exclusive: ['preview', 'yes']}),
  }

  public async run(): Promise<RetentionResult[] | ApplyResult> {
    const {argv, flags} = await this.parse(PackerClean)
    const groups = (argv as string[]).filter(Boolean)
    const cwd = process.cwd()
    if (!flags['dry-run']) {
      const result = await packerClean(
        {cwd, nodesPath: flags.nodes, environment: flags.env, groups: groups.length > 0 ? groups : undefined, keep: flags.keep, previewOnly: flags.preview, parallel: flags.parallel},
        this.host(flags),
      )
      this.report(result, undefined)
      return result
    }
    const results: RetentionResult[] = []
    for (const group of groups.length > 0 ? groups : [undefined]) {
      results.push(...(await retainImages({cwd, nodesPath: flags.nodes, environment: flags.env, group, keep: flags.keep, dryRun: true}, this.host())))
    }
    if (!this.jsonEnabled()) {
      process.stdout.write(formatRetention(results, {color: this.stdoutColor}))
      for (const result of results) process.stderr.write(formatRetentionSummary(result))
    }
    return results
  }
}
