import {Flags} from '@oclif/core'

import {GenerateCommand} from '../generate-command.js'

export default class Generate extends GenerateCommand {
  static override summary = 'Generate every artifact from the nodes file: roles, Auto Scaling dna and Packer templates.'
  static override description = `Offline and fast; the output is meant to be committed and reviewed. Roles are rewritten when the nodes file changed (like role:update), dna for groups with autoscale, Packer templates for groups that bake. With --check nothing is written and the exit code is 1 when anything is missing or stale.`
  static override examples = [
    {description: 'Write everything', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'In CI: is everything committed up to date?', command: '<%= config.bin %> <%= command.id %> --check'},
    {description: 'Show the diff of each rewritten file', command: '<%= config.bin %> <%= command.id %> --diff'},
  ]
  static override flags = {
    ...GenerateCommand.flags,
    diff: Flags.boolean({description: 'Print the diff of every rewritten file.'}),
  }
  protected readonly kinds = {role: 'update', dna: 'update', packer: 'update'} as const
  protected override showDiffs(flags: Record<string, unknown>): boolean {
    return flags.diff === true
  }
}
