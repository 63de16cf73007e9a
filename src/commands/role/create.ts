import {GenerateCommand} from '../../generate-command.js'

export default class RoleCreate extends GenerateCommand {
  static override summary = 'Create the Chef role of a group (roles/GROUP.json).'
  static override description = `The role is named role-GROUP; its run_list is the group's run_list followed by its post_run_list, after inheritance from __base__, each recipe once. An existing role with other content is never overwritten: use role:update to rewrite it and see the diff.`
  static override examples = [
    {description: 'Create the role of one group', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Create the roles of every group', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'In CI: fail when a role is missing or stale', command: '<%= config.bin %> <%= command.id %> --check'},
  ]
  protected readonly kinds = {role: 'create'} as const
}
