// Placeholder until the stack's retention part is wired in (the lead replaces this body):
// packer:clean without --dry-run records N in the group's stack and runs its retention part.
import {UserError} from '../errors.js'

export async function applyRetentionThroughStack(_opts: {cwd: string; nodesPath?: string; group: string; keep: number; yes: boolean}): Promise<unknown> {
  throw new UserError(`removing images of group ${_opts.group} goes through its Pulumi stack, which this version of muster cannot update`, {
    hint: `Run "muster packer:clean ${_opts.group} -n ${_opts.keep} --dry-run" to list what would be removed.`,
  })
}
