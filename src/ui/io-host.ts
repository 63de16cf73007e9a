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
  /** The verb drives the engine: the first Ctrl-C stops it gracefully (see interruptOnSigint). */
  interruptible?: boolean
}

let sigintInstalled: AbortController | undefined

/**
 * The first Ctrl-C (SIGINT, from the terminal to the whole process group, or to muster alone)
 * aborts the returned signal: the engine stops after its current step, Packer (which gets SIGINT
 * from the engine's plugin shutdown) removes its temporary instance, and the verb ends with what is
 * left, exit 130. A second Ctrl-C stops muster at once.
 */
function interruptOnSigint(write: (line: string) => void): AbortSignal {
  if (sigintInstalled) return sigintInstalled.signal
  const controller = new AbortController()
  sigintInstalled = controller
  process.on('SIGINT', () => {
    if (!controller.signal.aborted) {
      write('Interrupted: stopping after the current step (Packer removes its temporary instance); press Ctrl-C again to stop at once.')
      controller.abort()
      return
    }
    write('Stopped at once: state may be locked or left with pending operations; the next run says what to do.')
    process.exit(130)
  })
  return controller.signal
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
  const progress = (line: string): void => {
    process.stderr.write(`${paint(color, 'dim', line)}\n`)
  }
  return {
    ...(options.interruptible ? {interrupt: interruptOnSigint((line) => process.stderr.write(`${line}\n`))} : {}),
    assumeYes,
    verbose: options.verbose ?? false,
    progress,
    stream: (group, line) => process.stderr.write(`${paint(color, 'cyan', `${group} |`)} ${line}\n`),
    showPreview: (sets) => {
      for (const set of sets) process.stderr.write(formatChangeSet(set, color))
    },
    showDone: (set) => process.stderr.write(formatChangeSet(set, color, {done: true})),
    confirm: (request) => confirmWith(request, {assumeYes, interactive, ask: askOnTerminal}),
  }
}
