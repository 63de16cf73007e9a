// The offline generating verbs differ only in which artifacts they write and how; this class holds
// the flags and the rendering they share so each verb file stays a description and a kind map.
import {Args} from '@oclif/core'

import {generate, type ArtifactKind, type GenerateResult} from './artifacts/generate.js'
import type {WritePolicy} from './artifacts/writer.js'
import {checkFlag, MusterCommand, envFlag, nodesFlag} from './base-command.js'
import {formatWriteReport} from './ui/format.js'

export abstract class GenerateCommand extends MusterCommand {
  static override enableJsonFlag = true
  static override args = {
    group: Args.string({description: 'Node group (default: every group it applies to).'}),
  }
  static override flags = {
    nodes: nodesFlag,
    env: envFlag,
    check: checkFlag,
  }

  protected abstract readonly kinds: Partial<Record<ArtifactKind, WritePolicy>>
  /** Whether updated files print their diff (role:update does; generate does with --diff). */
  protected showDiffs(_flags: Record<string, unknown>): boolean {
    return true
  }

  public async run(): Promise<GenerateResult> {
    // oclif's parse() spreads the class, which drops statics inherited from this base class.
    const ctor = this.constructor as typeof GenerateCommand
    const {args, flags} = await this.parse({...ctor, args: ctor.args, flags: ctor.flags, baseFlags: ctor.baseFlags, enableJsonFlag: ctor.enableJsonFlag})
    const result = generate({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, group: args.group, kinds: this.kinds, check: flags.check})
    if (!this.jsonEnabled()) {
      process.stdout.write(formatWriteReport(result, {color: this.stdoutColor, diffs: this.showDiffs(flags) || flags.check}))
    }
    if (result.checked && !result.upToDate) {
      const bad = result.results.filter((r) => r.status === 'missing' || r.status === 'stale').length
      if (!this.jsonEnabled()) process.stderr.write(`${bad} file${bad === 1 ? ' is' : 's are'} missing or stale; run the same command without --check to write ${bad === 1 ? 'it' : 'them'}.\n`)
      process.exitCode = 1
    }
    return result
  }
}
