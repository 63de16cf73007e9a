import {Args, Flags} from '@oclif/core'

import {MusterCommand, envFlag, nodesFlag} from '../base-command.js'
import {preview, type PreviewResult} from '../actions/stack.js'
import {formatChangeSet, formatMarkdown} from '../ui/changes.js'
import {formatOrphans, formatOrphansMarkdown} from '../ui/orphans.js'

export default class Preview extends MusterCommand {
  static override summary = 'Preview many stacks in parallel; exit 0 (no changes), 2 (changes) or 1 (error).'
  static override description = `Previews everything each group's stack has recorded, against the current nodes file and templates. --markdown prints a summary a pull request can carry: per group, creates, updates, replaces and deletes, and the changed properties.
Without GROUP it also lists orphan stacks: stacks of this project whose group is no longer in the nodes file (muster destroy GROUP takes one down); any orphan makes the exit code 2.`
  static override examples = [
    {description: 'Every group', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Two groups, as a pull request comment', command: '<%= config.bin %> <%= command.id %> 12_04-bee 12_04-www --markdown > preview.md'},
    {description: 'In CI: fail only on errors, flag changes', command: '<%= config.bin %> <%= command.id %> --parallel 4; test $? -ne 1'},
    {description: "Production's stacks, for the pull request that promotes to it", command: '<%= config.bin %> <%= command.id %> --env production --markdown > preview.md'},
  ]
  static override strict = false
  static override enableJsonFlag = true
  protected override readonly interruptible: boolean = true
  static override args = {groups: Args.string({description: 'Node groups (default: every group).'})}
  static override flags = {
    nodes: nodesFlag,
    env: envFlag,
    markdown: Flags.boolean({description: 'Print Markdown for a pull request.'}),
    parallel: Flags.integer({description: 'How many stacks to preview at once (default: the number of cores).', min: 1}),
  }

  public async run(): Promise<PreviewResult> {
    const {argv, flags} = await this.parse(Preview)
    const groups = (argv as string[]).filter(Boolean)
    const result = await preview({cwd: process.cwd(), nodesPath: flags.nodes, environment: flags.env, groups: groups.length > 0 ? groups : undefined, parallel: flags.parallel}, this.host())
    if (!this.jsonEnabled()) {
      const color = this.stdoutColor
      const environment = result.environment
      if (flags.markdown) process.stdout.write(formatMarkdown(result.sets, result.errors, {environment}) + formatOrphansMarkdown(result.orphans, result.nodesFile, environment))
      else {
        if (environment !== undefined) process.stdout.write(`Environment ${environment} (stacks GROUP.${environment}):\n`)
        for (const set of result.sets) process.stdout.write(formatChangeSet(set, color))
        process.stdout.write(formatOrphans(result.orphans, result.nodesFile, environment))
        for (const error of result.errors) process.stderr.write(`${error.stack}: error: ${error.message}\n`)
      }
    }
    process.exitCode = result.exitCode
    return result
  }
}
