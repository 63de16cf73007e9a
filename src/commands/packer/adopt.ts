import {Args, Flags} from '@oclif/core'

import {packerAdopt} from '../../actions/packer-adopt.js'
import type {AdoptResult} from '../../aws/retention.js'
import {MusterCommand, envFlag, nodesFlag} from '../../base-command.js'

export default class PackerAdopt extends MusterCommand {
  static override summary = "Make a group's legacy AMIs (tagged with the group but no project) this project's."
  static override description = `Images baked before muster tagged images with their project (muster:project, the name in Pulumi.yaml) carry only muster:group=GROUP. Retention, packer:delete and from_base never touch such legacy images: another project with a group of the same name in this account may own them. This verb lists them, asks, and tags them muster:project=PROJECT; from then on retention and packer:delete manage them like any image the project baked (and from_base builds on an adopted __base__ image). Name AMIs to adopt only those; an AMI that is not the group's or belongs to another project is refused and nothing is tagged. Credentials and endpoint (AWS_ENDPOINT_URL) come from the environment.`
  static override examples = [
    {description: "List the group's legacy images", command: '<%= config.bin %> <%= command.id %> 12_04-bee --dry-run'},
    {description: 'Adopt all of them, without a terminal', command: '<%= config.bin %> <%= command.id %> 12_04-bee --yes'},
    {description: 'Adopt two images only', command: '<%= config.bin %> <%= command.id %> 12_04-bee ami-0abc ami-0def'},
    {description: 'Adopt the base image, so from_base groups build on it', command: '<%= config.bin %> <%= command.id %> __base__ --yes'},
  ]
  static override enableJsonFlag = true
  static override strict = false
  static override args = {
    group: Args.string({description: 'Node group (or __base__).', required: true}),
    ami: Args.string({description: 'AMI ids to adopt (default: every legacy image of the group).'}),
  }
  static override flags = {
    nodes: nodesFlag,
    env: envFlag,
    yes: Flags.boolean({char: 'y', description: 'Tag without asking (required without a terminal).'}),
    'dry-run': Flags.boolean({description: 'Change nothing; list what would be adopted.'}),
  }

  public async run(): Promise<AdoptResult> {
    const {args, argv, flags} = await this.parse(PackerAdopt)
    const amis = (argv as string[]).slice(1)
    const result = await packerAdopt(
      {cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, imageIds: amis.length > 0 ? amis : undefined, dryRun: flags['dry-run']},
      this.host(flags),
    )
    if (!this.jsonEnabled()) {
      const verb = result.dryRun ? 'would adopt' : 'adopted'
      for (const image of result.adopted) this.log(`${result.group}  ${verb}  ${image.id}  ${image.name || '-'}  ${image.created || '-'}`)
    }
    return result
  }
}
