// The one flow every verb that changes a stack follows: open each group's stack once, program it
// with the intent the verb asks for, preview the verb's part, show every preview, ask (the host
// knows about --yes and terminals), record the intent in stack config, and update only that part
// — groups in parallel, bounded.
//
// Each group's run is its own: one group's failure (or interruption) never costs another group its
// result. Every group gets an outcome — ok with its outputs, failed with its error — and a run of
// several groups returns them all; a run of one group throws its error, as any verb would.
import {writeArtifacts} from '../artifacts/writer.js'
import {InterruptedError, UserError} from '../errors.js'
import type {Group} from '../nodes/model.js'
import {mapBounded} from '../lib/parallel.js'
import {type ChangeSet, collectChanges, hasChanges} from '../stacks/changes.js'
import {installAgentBundle, publishBootAgent} from '../artifacts/agent-bundle.js'
import {openReleaseBucket} from '../release/bucket.js'
import {buildContext} from '../stacks/context.js'
import {interruptPart} from '../stacks/bake.js'
import type {Intent} from '../stacks/intent.js'
import {groupProgram, type Part} from '../stacks/program.js'
import {targetsFor} from '../stacks/session.js'
import {type GroupStack, groupArgs} from '../stacks/workspace.js'
import {runHooks, tailPartLogs} from './engine-output.js'
import type {IoHost} from './io.js'
import type {Project} from './project.js'

/** What a failed update's error adds: the verb's intent was not kept. */
export const intentWithdrawnNote = (group: string, file: string): string =>
  `What this run asked for was not kept: ${file} is back as it was, so ${group}'s other verbs work as before. Anything the failed update created stays in the stack until the verb runs again (and picks it up) or \`muster up ${group}\` removes it.`

/** The update's error with that note; a bug stays a bug (the note goes to progress instead). */
function intentWithdrawn(error: unknown, group: string, file: string, io: IoHost): unknown {
  const note = intentWithdrawnNote(group, file)
  const hint = [error instanceof UserError ? error.hint : undefined, note].filter(Boolean).join('\n')
  if (error instanceof InterruptedError) return new InterruptedError(error.message, {hint, cause: error.cause ?? error})
  if (error instanceof UserError) return new UserError(error.message, {hint, exitCode: error.exitCode, cause: error.cause ?? error})
  io.progress(`[${group}] ${note}`)
  return error
}

export interface StackUpdate {
  groups: readonly Group[]
  change: (intent: Intent, group: Group) => Intent
  /** Parts to update; undefined updates everything recorded (muster up). */
  parts: readonly Part[] | undefined
  previewOnly: boolean
  /** After an interrupted update: clear pending creates before previewing. */
  clearPending?: boolean
  /** Leave out groups that have no stack yet instead of creating one (packer:delete). */
  onlyExisting?: boolean
  /** Refuse a group that has no stack yet with this error instead of creating one (autoscale:update). */
  refuseMissing?: (group: Group) => UserError
  /** false: the verb has asked already; update without a separate preview. */
  ask?: boolean
  /**
   * This call is one step of a larger run (packer:run bakes __base__, then the groups built from
   * it): a failure comes back as the group's outcome even when the step has one group.
   */
  stepOfRun?: boolean
}

export type OutcomeStatus = 'ok' | 'failed' | 'interrupted'

export interface GroupOutcome {
  group: string
  status: OutcomeStatus
  intent: Intent
  preview: ChangeSet
  /** Whether the update changed anything. */
  applied: boolean
  /** What the update did, resource by resource (undefined when no update ran). */
  done?: ChangeSet
  outputs?: Record<string, unknown>
  /** Why the group failed (status failed or interrupted), naming the group. */
  error?: {message: string; hint?: string}
}

export interface ApplyResult {
  backend: string
  groups: GroupOutcome[]
}

interface Prepared {
  group: Group
  intent: Intent
  stack: GroupStack
  /** undefined when nobody is asked: the update itself reports what it changed. */
  preview: ChangeSet | undefined
}

/** Runs one group's step, turning its failure into the group's outcome instead of the run's. */
async function settle<T>(outcome: GroupOutcome, failures: Map<string, unknown>, step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step()
  } catch (error) {
    failures.set(outcome.group, error)
    outcome.status = error instanceof InterruptedError ? 'interrupted' : 'failed'
    const message = error instanceof Error ? error.message : String(error)
    outcome.error = {message, ...(error instanceof UserError && error.hint ? {hint: error.hint} : {})}
    return undefined
  }
}

export async function updateStacks(project: Project, update: StackUpdate, io: IoHost): Promise<ApplyResult> {
  const session = project.session()
  const interrupted = (): boolean => io.interrupt?.aborted === true
  const ask = update.ask !== false && !io.assumeYes
  const failures = new Map<string, unknown>()
  const empty = (group: string): ChangeSet => collectChanges(group, [])
  const outcomes = update.groups.map((g): GroupOutcome => ({group: g.name, status: 'ok', intent: {} as Intent, preview: empty(g.name), applied: false}))
  const prepared = await mapBounded(update.groups, project.parallel, async (group, index): Promise<Prepared | undefined> => {
    const outcome = outcomes[index] as GroupOutcome
    return settle(outcome, failures, async () => {
      if (interrupted()) throw new InterruptedError(`${group.name} was not opened: interrupted before its turn; nothing was changed`)
      const stack = update.onlyExisting || update.refuseMissing ? await session.openExisting(group) : await session.openOrCreate(group)
      if (!stack && update.refuseMissing) throw update.refuseMissing(group)
      if (!stack) return undefined
      const intent = update.change(await stack.intent(), group)
      outcome.intent = intent
      const context = buildContext(project.root, project.nodes, group, intent, await project.contextInputs(group))
      if (!update.previewOnly) {
        writeArtifacts(project.root, context.files, {check: false})
        if (context.agentBundle) installAgentBundle(project.root, context.agentBundle)
        if (context.bootAgent) {
          const uploaded = await publishBootAgent(openReleaseBucket({bucket: context.bootAgent.bucket, region: group.region}), context.bootAgent)
          for (const url of uploaded) io.progress(`[${group.name}] uploaded ${url} (the agent, installed at boot: packer is false)`)
        }
      }
      stack.setProgram(groupProgram(context.program))
      if (update.clearPending) {
        io.progress(`[${group.name}] clearing pending operations (refresh)…`)
        await stack.clearPending(runHooks(group.name, io, {events: false}), io.interrupt)
      }
      // With --yes nobody is asked, so the separate preview is skipped: the update itself reports
      // what it changed (the engine previews each step anyway), which halves the engine's work.
      if (!ask && !update.previewOnly) return {group, intent, stack, preview: undefined}
      io.progress(`[${group.name}] previewing…`)
      const preview = await stack.preview(targetsFor(stack, update.parts), runHooks(group.name, io, {events: false}), io.interrupt)
      outcome.preview = preview
      return {group, intent, stack, preview}
    })
  })
  // Groups with no stack (onlyExisting) have no outcome at all.
  const kept = outcomes.filter((o, i) => prepared[i] !== undefined || o.status !== 'ok')
  const result = (): ApplyResult => ({backend: session.backend.describe, groups: kept})
  const previews = prepared.flatMap((p) => (p?.preview ? [p.preview] : []))
  if (previews.length > 0) io.showPreview(previews)
  if (update.previewOnly) return finish(result(), failures, update.stepOfRun)

  const ready = prepared.map((p, i) => (p ? {p, outcome: outcomes[i] as GroupOutcome} : undefined)).filter((x) => x !== undefined)
  const changing = ready.filter(({p}) => p.preview && hasChanges(p.preview))
  if (changing.length > 0 && !interrupted()) {
    await io.confirm({
      question: `Apply these changes to ${changing.map(({p}) => p.group.name).join(', ')}?`,
      unattended: {message: 'this changes infrastructure and there is no terminal to ask for confirmation', hint: 'Review the preview above, then run again with --yes (or --preview to only preview).'},
      declined: {message: 'nothing was changed', hint: 'Run again and answer yes, or use --preview to only look.'},
    })
  }
  await mapBounded(ready, project.parallel, async ({p, outcome}) => {
    // Ctrl-C before this group's update started: leave it as it was.
    if (interrupted()) return settle(outcome, failures, () => Promise.reject(new InterruptedError(`${p.group.name} was not updated: interrupted before its update started; nothing was changed`)))
    return settle(outcome, failures, () => applyOne(project.root, p, outcome, update.parts, io))
  })
  return finish(result(), failures, update.stepOfRun)
}

/** One group alone: its failure is the verb's. Several (or a step of a larger run): every outcome, failures included. */
function finish(result: ApplyResult, failures: Map<string, unknown>, stepOfRun = false): ApplyResult {
  if (result.groups.some((g) => g.status === 'interrupted')) throw interruptedSummary(result)
  if (!stepOfRun && result.groups.length === 1 && failures.size === 1) throw failures.values().next().value
  return result
}

async function applyOne(root: string, p: Prepared, outcome: GroupOutcome, parts: readonly Part[] | undefined, io: IoHost): Promise<void> {
  const recorded = await p.stack.recordIntent(p.intent)
  if (p.preview && !hasChanges(p.preview)) {
    outcome.outputs = await p.stack.outputs()
    return
  }
  io.progress(`[${p.group.name}] updating…`)
  const stopTail = tailPartLogs(root, p.stack.name, io)
  // Ctrl-C: the engine stops after its current step; a bake in that step is asked to stop too.
  const started = Date.now()
  const stopBake = (): void => {
    if (interruptPart(root, p.stack.name, 'bake', started)) io.progress(`[${p.group.name}] asked Packer to stop; it removes its temporary instance…`)
  }
  io.interrupt?.addEventListener('abort', stopBake, {once: true})
  let result: Awaited<ReturnType<GroupStack['up']>>
  try {
    result = await p.stack.up(targetsFor(p.stack, parts), runHooks(p.group.name, io, {events: true}), io.interrupt).finally(() => {
      io.interrupt?.removeEventListener('abort', stopBake)
      stopTail()
    })
  } catch (error) {
    // A verb that fails leaves the group as it was: its intent goes, so it cannot block the next
    // verb (a fleet the engine cannot create would otherwise fail every later packer:run too).
    if (!recorded.changed) throw error
    await recorded.restore()
    throw intentWithdrawn(error, groupArgs(p.group), recorded.file, io)
  }
  outcome.outputs = result.outputs
  outcome.done = result.changes
  outcome.applied = hasChanges(result.changes)
  if (!p.preview) outcome.preview = result.changes
  io.showDone(result.changes)
}

/** After Ctrl-C: every group's state, and what to run next. */
function interruptedSummary(result: ApplyResult): InterruptedError {
  const lines = result.groups.map((g) => {
    if (g.status === 'ok') return `  ${g.group}: ${g.done ? 'updated before the interruption' : 'done'}`
    return `  ${g.group}: ${(g.error?.message ?? '').split('\n').join('\n    ')}`
  })
  const hints = [...new Set(result.groups.flatMap((g) => (g.status !== 'ok' && g.error?.hint ? [g.error.hint] : [])))]
  return new InterruptedError(`interrupted (Ctrl-C); what is left:\n${lines.join('\n')}`, {hint: [...hints, 'Next: run the same command again; it picks up where this one stopped.'].join('\n→ ')})
}
