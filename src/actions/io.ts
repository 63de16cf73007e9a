// What a verb may do with the person running it, in the manner of aws-cdk toolkit-lib's IoHost:
// tell (progress, streamed engine output, previews) and ask. Only the host behind this interface
// knows whether there is a terminal, whether --yes or --json was given, and about colour.
import {UserError} from '../errors.js'
import type {ChangeSet} from '../stacks/changes.js'

export interface ConfirmRequest {
  question: string
  /** The refusal when nobody can be asked (no terminal, no --yes). */
  unattended: {message: string; hint: string}
  /** The refusal when the answer is no. */
  declined: {message: string; hint?: string}
}

export interface IoHost {
  /** --yes: every question is answered yes without asking (so a verb may skip a separate preview). */
  readonly assumeYes: boolean
  /** --verbose: the engine's own output is streamed too. */
  readonly verbose: boolean
  /** A progress line; never on stdout, which carries results. */
  progress(line: string): void
  /** A line of a group's streamed output (Packer's log, retention's report, the engine's text). */
  stream(group: string, line: string): void
  /** Every group's preview, before any question. */
  showPreview(sets: readonly ChangeSet[]): void
  /** What an update did to a group's stack, once it is done (said as done, not as planned). */
  showDone(set: ChangeSet): void
  /**
   * Aborted on the first Ctrl-C: the engine is asked to stop after its current step (as the Pulumi
   * CLI does), no further group starts, and the verb ends with what is left and what to run next.
   */
  readonly interrupt?: AbortSignal | undefined
  /** Resolves when the answer is yes (or --yes); otherwise throws the request's refusal. */
  confirm(request: ConfirmRequest): Promise<void>
}

/** The shared half of every host's confirm: --yes, then a terminal to ask on, then the answer. */
export async function confirmWith(request: ConfirmRequest, host: {assumeYes: boolean; interactive: boolean; ask(question: string): Promise<boolean>}): Promise<void> {
  if (host.assumeYes) return
  if (!host.interactive) throw new UserError(request.unattended.message, {hint: request.unattended.hint})
  if (!(await host.ask(request.question))) throw new UserError(request.declined.message, request.declined.hint === undefined ? {} : {hint: request.declined.hint})
}
