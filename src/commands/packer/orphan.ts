import {Args, Flags} from '@oclif/core'

import {adoptableImage} from '../../actions/packer.js'
import {MusterCommand, envFlag, nodesFlag} from '../../base-command.js'

/** Exit status when there is nothing to adopt: the bake goes on to run Packer. */
export const NO_ORPHAN_EXIT = 3

export default class PackerOrphan extends MusterCommand {
  static override hidden = true
  static override summary = 'Print the AMI a killed bake of the same template and cookbooks left behind, to adopt it; used inside the bake.'
  static override description = `Looks for an available image of the group tagged with the project, the template hash and the cookbooks hash given: one that a bake whose muster was killed finished without its stack recording it. Prints "AMI adopted" and exits 0 when there is one; exits ${NO_ORPHAN_EXIT} when there is none (the bake then runs Packer).`
  static override examples = ['<%= config.bin %> <%= command.id %> 12_04-bee --template-hash 0123456789abcdef --cookbooks-hash fedcba9876543210']
  static override args = {group: Args.string({required: true, description: 'Node group.'})}
  static override flags = {
    nodes: nodesFlag,
    env: envFlag,
    'template-hash': Flags.string({required: true, description: 'The muster:template-hash the image must carry.'}),
    'cookbooks-hash': Flags.string({required: true, description: 'The muster:cookbooks-hash the image must carry.'}),
  }

  public async run(): Promise<void> {
    const {args, flags} = await this.parse(PackerOrphan)
    const io = {progress: (line: string) => process.stderr.write(`${line}\n`)}
    const ami = await adoptableImage({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, templateHash: flags['template-hash'], cookbooksHash: flags['cookbooks-hash']}, io)
    if (ami) {
      process.stderr.write(`${ami} was baked from this template and these cookbooks by a bake whose muster was stopped: adopting it instead of baking again.\n`)
      this.log(`${ami} adopted`)
      return
    }
    process.stderr.write('No image of this template and these cookbooks yet: baking.\n')
    process.exitCode = NO_ORPHAN_EXIT
  }
}
