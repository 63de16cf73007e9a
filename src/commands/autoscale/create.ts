import {GenerateCommand} from '../../generate-command.js'

export default class AutoscaleCreate extends GenerateCommand {
  static override summary = "Create an Auto Scaling group's Chef dna (dna/asg/GROUP.json), and its role when missing."
  static override description = `The dna is {"id": GROUP, "run_list": ["role[role-GROUP]"]}; nodes of the group converge with it at boot. The group needs an "autoscale" dict in the nodes file. Without GROUP, every group with autoscale set.`
  static override examples = [
    {description: 'Create the dna (and role) of one group', command: '<%= config.bin %> <%= command.id %> 12_04-bee'},
    {description: 'Check every autoscaled group in CI', command: '<%= config.bin %> <%= command.id %> --check'},
  ]
  protected readonly kinds = {dna: 'update'} as const
}
