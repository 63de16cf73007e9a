import {GenerateCommand} from '../../generate-command.js'

export default class RoleUpdate extends GenerateCommand {
  static override aliases = ['roles:update']
  static override summary = 'Rewrite the Chef role of a group from the nodes file and show what changed.'
  static override description = `Run it after editing the nodes file. It only rewrites roles/GROUP.json; running nodes pick the change up at their next provisioning (see instance:deploy).`
  static override examples = [
    {description: 'Update one role and print its diff', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'The paper spells it roles:update; both work', command: '<%= config.bin %> roles:update 12_04-bee'},
    {description: 'Machine-readable result', command: '<%= config.bin %> <%= command.id %> --json'},
  ]
  protected readonly kinds = {role: 'update'} as const
}
