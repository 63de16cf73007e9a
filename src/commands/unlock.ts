import {Args, Flags} from '@oclif/core'

import {unlock, type UnlockResult} from '../actions/unlock.js'
import {StackCommand, stackFlags} from '../stack-command.js'

export default class Unlock extends StackCommand {
  static override summary = "Clear a group's stack lock left by an update that was killed."
  static override description = `An update holds its stack's lock while it runs and releases it when it ends, Ctrl-C included. An update that was killed (kill -9, a lost SSH session) leaves it behind, and every later run says the stack is locked. unlock says who holds the lock and whether that process still runs (the embedded and other file backends name its pid and host), then clears it after a confirmation (or --yes). It refuses a lock whose holder still runs on this host unless --force. Works on every backend, the embedded one included.`
  static override examples = [
    {description: 'See who holds the lock', command: '<%= config.bin %> <%= command.id %> 12_04-bee --preview'},
    {description: 'Clear a stale lock', command: '<%= config.bin %> <%= command.id %> 12_04-bee --yes'},
  ]
  static override args = {group: Args.string({description: 'Node group.', required: true})}
  static override flags = {
    nodes: stackFlags.nodes,
    env: stackFlags.env,
    yes: stackFlags.yes,
    preview: Flags.boolean({description: 'Only say who holds the lock; clear nothing.'}),
    force: Flags.boolean({description: 'Clear the lock even though its holder still runs on this host.'}),
  }

  public async run(): Promise<UnlockResult> {
    const {args, flags} = await this.parse(Unlock)
    const result = await unlock({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, previewOnly: flags.preview, force: flags.force}, this.host(flags))
    if (!this.jsonEnabled()) {
      if (result.holders?.length === 0) this.log(`${result.group}: not locked; nothing to clear`)
      else if (result.cleared) this.log(`${result.group}: lock cleared`)
      if (result.pending.length > 0) {
        process.stderr.write(`${result.group}: the interrupted update left pending operations (${result.pending.join(', ')}).\n→ Next: muster up ${result.group}${result.environment === undefined ? '' : ` --env ${result.environment}`} --clear-pending (it checks each against the cloud and drops what was never made).\n`)
      } else if (result.cleared) {
        process.stderr.write(`→ Next: run again the command that was interrupted.\n`)
      }
    }
    return result
  }
}
