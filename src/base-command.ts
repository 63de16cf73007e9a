// Every muster command extends this: shared flags and the one place errors become output and an
// exit code. A UserError prints its message and next step; anything else is a bug and shows its
// stack with --verbose. Library code never calls process.exit.
import {Command, Errors, Flags} from '@oclif/core'

import {UserError} from './errors.js'
import type {IoHost} from './actions/io.js'
import {formatError} from './ui/format.js'
import {colorFor, terminalHost} from './ui/io-host.js'

export const nodesFlag = Flags.string({
  description: 'Path of the nodes file (default: nodes.json or nodes.yaml in the working directory).',
  env: 'MUSTER_NODES',
  helpValue: 'PATH',
})

export const envFlag = Flags.string({
  description: 'The environment to work on, as the nodes file\'s "__environments__" names it (default: the file\'s default environment).',
  env: 'MUSTER_ENV',
  helpValue: 'NAME',
})

export const checkFlag = Flags.boolean({
  description: 'Write nothing; exit 1 when a file is missing or differs from what the nodes file gives (for CI).',
})

let stdoutGuarded = false

/**
 * A reader that goes away (`muster ls | head -1`) or a full disk behind a redirect makes writes to
 * stdout fail with EPIPE or ENOSPC, asynchronously. That is the machine's state, not a bug: say so
 * once on stderr and exit 1, instead of crashing with a stack trace.
 */
function guardStdout(): void {
  if (stdoutGuarded) return
  stdoutGuarded = true
  // oclif's own listener swallows EPIPE silently and rethrows anything else (a crash with a stack).
  process.stdout.removeAllListeners('error')
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    const what = error.code === 'EPIPE' ? 'the reader of stdout closed it (EPIPE)' : `writing to stdout failed (${error.code ?? error.message})`
    if (process.exitCode === undefined || process.exitCode === 0) {
      process.stderr.write(`Error: ${what} before muster finished writing its output\n→ Read the whole output, or redirect it to a file with room for it.\n`, () => undefined)
      process.exitCode = 1
    }
  })
}

export abstract class MusterCommand extends Command {
  static override baseFlags = {
    verbose: Flags.boolean({description: 'Show stack traces and streamed engine output.', helpGroup: 'GLOBAL'}),
  }

  public override async init(): Promise<void> {
    await super.init()
    guardStdout()
  }

  protected get verbose(): boolean {
    return this.argv.includes('--verbose')
  }

  /** Verbs that drive the Pulumi engine stop it gracefully on Ctrl-C (see terminalHost). */
  protected readonly interruptible: boolean = false

  /** The I/O host for this run: --yes answers questions, --verbose streams the engine's output. */
  protected host(flags: {yes?: boolean} = {}): IoHost {
    return terminalHost({yes: flags.yes ?? false, verbose: this.verbose, json: this.jsonEnabled(), interruptible: this.interruptible})
  }

  /** Whether results printed on stdout may carry colour. */
  protected get stdoutColor(): boolean {
    return colorFor(process.stdout)
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    const isUser = error instanceof UserError || error instanceof Errors.CLIError
    const exitCode = error instanceof UserError ? error.exitCode : 1
    if (this.jsonEnabled()) {
      this.logJson({error: {message: error.message, ...(error instanceof UserError && error.hint ? {hint: error.hint} : {}), kind: isUser ? 'user' : 'bug'}})
    } else {
      process.stderr.write(formatError(error, {bug: !isUser, verbose: this.verbose, color: colorFor(process.stderr)}))
    }
    process.exitCode = exitCode
    return undefined
  }
}
