import {Args, Command, Help} from '@oclif/core'

import {USAGE_EXIT_CODE} from '../hooks/command-not-found.js'
import {didYouMean} from '../nodes/validate.js'
import {neutralise} from '../ui/format.js'

export default class HelpCommand extends Command {
  static override summary = 'Show help for muster, a topic or a verb.'
  static override examples = [
    {description: 'Every verb', command: '<%= config.bin %> help'},
    {description: 'One verb', command: '<%= config.bin %> help role:create'},
  ]
  static override strict = false
  static override args = {command: Args.string({description: 'Verb or topic.', required: false})}

  public async run(): Promise<void> {
    const {argv} = await this.parse(HelpCommand)
    const words = argv as string[]
    const id = words.filter((w) => !w.startsWith('-')).join(':')
    if (id !== '' && !this.config.findCommand(id) && !this.config.findTopic(id)) {
      const known = [...this.config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases]), ...this.config.topics.map((t) => t.name)]
      const guess = didYouMean(id, known)
      process.stderr.write(`Error: "${neutralise(id)}" is not a ${this.config.bin} command or topic${guess ? `; did you mean "${guess}"?` : ''}\n→ Run "${this.config.bin} help" for the list of commands.\n`)
      this.exit(USAGE_EXIT_CODE)
    }
    await new Help(this.config, {all: false}).showHelp(words)
  }
}
