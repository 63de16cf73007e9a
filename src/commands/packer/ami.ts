import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {Args} from '@oclif/core'

import {packerManifestPath} from '../../artifacts/packer.js'
import {MusterCommand, envFlag, nodesFlag} from '../../base-command.js'
import {UserError} from '../../errors.js'

interface Manifest {
  builds?: Array<{artifact_id?: string; packer_run_uuid?: string}>
  last_run_uuid?: string
}

export default class PackerAmi extends MusterCommand {
  static override hidden = true
  static override summary = "Print the AMI id of a group's last Packer build (from its manifest); used inside the bake."
  static override examples = ['<%= config.bin %> <%= command.id %> 12_04-bee']
  static override args = {group: Args.string({required: true, description: 'Node group.'})}
  static override flags = {nodes: nodesFlag, env: envFlag}

  public async run(): Promise<void> {
    const {args, flags} = await this.parse(PackerAmi)
    // In an environment the bake passes --env: each environment's bake has a manifest of its own.
    const path = packerManifestPath(args.group, flags.env === undefined || flags.env === '' ? undefined : flags.env)
    let manifest: Manifest
    try {
      manifest = JSON.parse(readFileSync(join(process.cwd(), path), 'utf8')) as Manifest
    } catch (error) {
      throw new UserError(`cannot read Packer's manifest ${path}: ${(error as Error).message}`, {hint: 'Did packer build finish? Its output is above.'})
    }
    const build = [...(manifest.builds ?? [])].reverse().find((b) => b.packer_run_uuid === manifest.last_run_uuid) ?? manifest.builds?.at(-1)
    const ami = /ami-[0-9a-f]+/.exec(build?.artifact_id ?? '')?.[0]
    if (!ami) throw new UserError(`Packer's manifest ${path} names no AMI for the last run`, {hint: 'Check the packer build output above.'})
    this.log(ami)
  }
}
