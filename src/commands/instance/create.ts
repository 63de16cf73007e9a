import {Args, Flags} from '@oclif/core'

import {StackCommand, stackFlags} from '../../stack-command.js'
import {instanceCreate, type InstanceCreateResult} from '../../actions/instance.js'

export default class InstanceCreate extends StackCommand {
  static override summary = 'Launch a one-off instance of a group, and write its dna (dna/instances/GROUP-INSTANCEID.json).'
  static override description = `For nodes where an Auto Scaling group makes no sense. The instance is recorded in the group's stack (names are unique within a group), boots the group's newest baked AMI (or source_ami), requires IMDSv2 and converges at boot with the group's role. --key imports the PEM's public key as a key pair (the private key never leaves your machine); no --zone picks a random zone of the region.`
  static override examples = [
    {description: 'A one-off worker', command: '<%= config.bin %> <%= command.id %> 12_04-bee --name batch-1 --key ~/.ssh/ops.pem'},
    {description: 'In a given zone, unattended', command: '<%= config.bin %> <%= command.id %> 12_04-bee --name batch-2 --zone us-east-1b --yes'},
  ]
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {
    ...stackFlags,
    name: Flags.string({description: 'Instance name, unique within the group (its Name tag is GROUP-NAME).', required: true}),
    key: Flags.string({description: 'PEM private key (or OpenSSH public key) whose public key is imported as a key pair.', helpValue: 'path/to/key.pem'}),
    zone: Flags.string({description: 'Availability zone (default: a random zone of the region).'}),
  }

  public async run(): Promise<InstanceCreateResult> {
    const {args, flags} = await this.parse(InstanceCreate)
    const result = await instanceCreate({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, name: flags.name, keyPath: flags.key, zone: flags.zone, previewOnly: flags.preview}, this.host(flags))
    if (!this.jsonEnabled()) for (const file of result.dnaFiles) this.log(`wrote ${file}`)
    return result
  }
}
