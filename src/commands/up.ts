import {Args, Flags} from '@oclif/core'

import {up} from '../actions/stack.js'
import type {ApplyResult} from '../actions/update.js'
import {StackCommand, stackFlags} from '../stack-command.js'
import {WITHDRAWABLE, type Withdrawable} from '../stacks/intent.js'

export default class Up extends StackCommand {
  static override summary = "Converge a group's stack to everything its verbs recorded."
  static override description = `Each verb (packer:run, packer:clean, autoscale:run, instance:create) records what it asked for in stacks/Pulumi.GROUP.yaml (stacks/Pulumi.GROUP.ENV.yaml in an environment) and updates only its own part; up applies all of it at once — after a nodes file change, say. Preview first, then a confirmation (or --yes).
--withdraw fleet|instances takes back what autoscale:run or instance:create recorded (say, a fleet that cannot be created and now fails every update of the group) and converges without it.`
  static override examples = [
    {description: 'Converge one group', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Converge two groups', command: '<%= config.bin %> <%= command.id %> 12_04-bee 12_04-www'},
    {description: 'Every group, in CI', command: '<%= config.bin %> <%= command.id %> --yes'},
    {description: 'After an interrupted update left pending operations', command: '<%= config.bin %> <%= command.id %> 12_04-bee --clear-pending'},
    {description: 'Take back the fleet an earlier autoscale:run recorded (its resources go, after a preview)', command: '<%= config.bin %> <%= command.id %> 12_04-bee --withdraw fleet'},
  ]
  static override strict = false
  static override args = {groups: Args.string({description: 'Node groups (default: every group).'})}
  static override flags = {
    ...stackFlags,
    'clear-pending': Flags.boolean({description: 'First drop operations an interrupted update left pending (pulumi refresh --clear-pending-creates).'}),
    withdraw: Flags.string({description: 'Take back what autoscale:run (fleet) or instance:create (instances) recorded, then converge: their resources go. Repeatable.', options: [...WITHDRAWABLE], multiple: true}),
  }

  public async run(): Promise<ApplyResult> {
    const {argv, flags} = await this.parse(Up)
    const groups = (argv as string[]).filter(Boolean)
    const result = await up(
      {cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, groups: groups.length > 0 ? groups : undefined, previewOnly: flags.preview, parallel: flags.parallel, clearPending: flags['clear-pending'], withdraw: (flags.withdraw ?? []) as Withdrawable[]},
      this.host(flags),
    )
    this.report(result, flags.preview ? undefined : (g) => `${g.group}: ${g.applied ? 'updated' : 'up to date'}`)
    return result
  }
}
