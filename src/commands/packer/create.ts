import {GenerateCommand} from '../../generate-command.js'

export default class PackerCreate extends GenerateCommand {
  static override summary = "Generate a group's Packer template (packer/GROUP.pkr.json, or packer/GROUP.ENV.pkr.json in an environment)."
  static override description = `An HCL2 JSON template with an amazon-ebs source (region, source_ami or the newest base image, instance type, tags with the group and the template hash), a build that converges the group's role with chef-solo (templates/packer/provision.sh, yours to change) and a manifest post-processor. It never contains credentials: Packer reads them from the environment. The group's "packer" dict adds source options. Also creates the role when missing.

Set MUSTER_PACKER_FLAVOR=legacy for Packer 1.6 (no required_plugins block, no IMDSv2 options).`
  static override examples = [
    {description: 'Generate one template', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: "The base image's template, for groups with from_base", command: '<%= config.bin %> <%= command.id %> __base__'},
    {description: 'Every baked group, then validate one with Packer', command: '<%= config.bin %> <%= command.id %> && packer validate packer/12_04-bee.pkr.json'},
  ]
  protected readonly kinds = {packer: 'update'} as const
}
