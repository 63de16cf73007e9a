// The one I/O host of every verb: the person at a terminal (or a CI job). Progress, streamed
// engine output and previews go to stderr (stdout carries results only); a question is asked only
// when there is a terminal to answer it, and --yes answers it. Only this module knows about
// terminals, --yes, --json and colour.
import {createInterface} from 'node:readline/promises'

import {confirmWith, type IoHost} from '../actions/io.js'
import {formatChangeSet} from './changes.js'
import {paint} from './format.js'

export interface HostOptions {
  yes?: boolean
  verbose?: boolean
  /** --json: stdout is one JSON value, so nothing coloured goes anywhere. */
  json?: boolean
}

/** Whether text for a stream may carry colour: a terminal, and NO_COLOR unset. */
export function colorFor(stream: {isTTY?: boolean}, options: {json?: boolean} = {}): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && !options.json
}

async function askOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({input: process.stdin, output: process.stderr})
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim())
  } finally {
    rl.close()
  }
}

export function terminalHost(options: HostOptions = {}): IoHost {
  const color = colorFor(process.stderr, options)
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY)
  const assumeYes = options.yes ?? false
  return {
    assumeYes,
    verbose: options.verbose ?? false,
    progress: (line) => process.stderr.write(`${paint(color, 'dim', line)}\n`),
    stream: (group, line) => process.stderr.write(`${paint(color, 'cyan', `${group} |`)} ${line}\n`),
    showPreview: (sets) => {
      for (const set of sets) process.stderr.write(formatChangeSet(set, color))
    },
    confirm: (request) => confirmWith(request, {assumeYes, interactive, ask: askOnTerminal}),
  }
}
