// `muster TOPIC WORD …` (a space where muster writes ":"): oclif would print the topic's help and
// exit 0, so a misspelled verb (`muster packer craete web`) looked like success. A topic followed
// by a word is a verb that was meant: a usage error (64) with the verb it most likely was.
import type {Hook} from '@oclif/core'

import {refuseUnknownVerb} from './command-not-found.js'

const hook: Hook<'init'> = async function (options) {
  const {id, argv, config} = options
  if (id === undefined || config.findCommand(id) || !config.findTopic(id)) return
  const next = argv.find((word) => !word.startsWith('-'))
  if (next === undefined) return
  refuseUnknownVerb(config, `${id}:${next}`, [], (code) => this.exit(code), `${id} ${next}`)
}

export default hook
