// The one flow every verb that changes a stack follows: open each group's stack once, program it
// with the intent the verb asks for, preview the verb's part, show every preview, ask (the host
// knows about --yes and terminals), record the intent in stack config, and update only that part
// — groups in parallel, bounded.
import {writeArtifacts} from '../artifacts/writer.js'
import type {Group} from '../nodes/model.js'
import {mapBounded} from '../lib/parallel.js'
import {type ChangeSet, collectChanges, hasChanges} from '../stacks/changes.js'
import {buildContext} from '../stacks/context.js'
import type {Intent} from '../stacks/intent.js'
import {groupProgram, type Part} from '../stacks/program.js'
import {targetsFor} from '../stacks/session.js'
import type {GroupStack} from '../stacks/workspace.js'
import {runHooks, tailPartLogs} from './engine-output.js'
import {UserError} from '../errors.js'
import type {IoHost} from './io.js'
import type {Project} from './project.js'

/** What a failed update's error adds: the verb's intent was not kept. */
export const intentWithdrawnNote = (group: string, file: string): string =>
  `What this run asked for was not kept: ${file} is back as it was, so ${group}'s other verbs work as before. Anything the failed update created stays in the stack until the verb runs again (and picks it up) or \`muster up ${group}\` removes it.`

/** The update's error with that note; a bug stays a bug (the note goes to progress instead). */
function intentWithdrawn(error: unknown, group: string, file: string, io: IoHost): unknown {
  const note = intentWithdrawnNote(group, file)
  if (error instanceof UserError) return new UserError(error.message, {hint: [error.hint, note].filter(Boolean).join('\n'), exitCode: error.exitCode, cause: error.cause ?? error})
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
}

export interface GroupOutcome {
  group: string
  intent: Intent
  preview: ChangeSet
  applied: boolean
  outputs?: Record<string, unknown>
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

export async function updateStacks(project: Project, update: StackUpdate, io: IoHost): Promise<ApplyResult> {
  const session = project.session()
  const ask = update.ask !== false && !io.assumeYes
  const opened = await mapBounded(update.groups, project.parallel, async (group) => {
    const stack = update.onlyExisting || update.refuseMissing ? await session.openExisting(group.name) : await session.openOrCreate(group.name)
    if (!stack && update.refuseMissing) throw update.refuseMissing(group)
    return stack ? {group, stack} : undefined
  })
  const prepared = await mapBounded(
    opened.filter((o) => o !== undefined),
    project.parallel,
    async ({group, stack}): Promise<Prepared> => {
      const intent = update.change(await stack.intent(), group)
      const context = buildContext(project.root, project.nodes, group, intent)
      if (!update.previewOnly) writeArtifacts(project.root, context.files, {check: false})
      stack.setProgram(groupProgram(context.program))
      if (update.clearPending) {
        io.progress(`[${group.name}] clearing pending operations (refresh)…`)
        await stack.clearPending(runHooks(group.name, io, {events: false}))
      }
      // With --yes nobody is asked, so the separate preview is skipped: the update itself reports
      // what it changed (the engine previews each step anyway), which halves the engine's work.
      if (!ask && !update.previewOnly) return {group, intent, stack, preview: undefined}
      io.progress(`[${group.name}] previewing…`)
      return {group, intent, stack, preview: await stack.preview(targetsFor(stack, update.parts), runHooks(group.name, io, {events: false}))}
    },
  )
  const outcomes: GroupOutcome[] = prepared.map((p) => ({group: p.group.name, intent: p.intent, preview: p.preview ?? collectChanges(p.group.name, []), applied: false}))
  const previews = prepared.flatMap((p) => (p.preview ? [p.preview] : []))
  if (previews.length > 0) io.showPreview(previews)
  const backend = session.backend.describe
  if (update.previewOnly) return {backend, groups: outcomes}

  const changing = prepared.filter((p) => p.preview && hasChanges(p.preview))
  if (changing.length > 0) {
    await io.confirm({
      question: `Apply these changes to ${changing.map((p) => p.group.name).join(', ')}?`,
      unattended: {message: 'this changes infrastructure and there is no terminal to ask for confirmation', hint: 'Review the preview above, then run again with --yes (or --preview to only preview).'},
      declined: {message: 'nothing was changed', hint: 'Run again and answer yes, or use --preview to only look.'},
    })
  }
  await mapBounded(prepared, project.parallel, async (p, index) => applyOne(project.root, p, outcomes[index] as GroupOutcome, update.parts, io))
  return {backend, groups: outcomes}
}

async function applyOne(root: string, p: Prepared, outcome: GroupOutcome, parts: readonly Part[] | undefined, io: IoHost): Promise<void> {
  const recorded = await p.stack.recordIntent(p.intent)
  if (p.preview && !hasChanges(p.preview)) {
    outcome.outputs = await p.stack.outputs()
    return
  }
  io.progress(`[${p.group.name}] updating…`)
  const stopTail = tailPartLogs(root, p.group.name, io)
  let result: Awaited<ReturnType<GroupStack['up']>>
  try {
    result = await p.stack.up(targetsFor(p.stack, parts), runHooks(p.group.name, io, {events: true})).finally(stopTail)
  } catch (error) {
    // A verb that fails leaves the group as it was: its intent goes, so it cannot block the next
    // verb (a fleet the engine cannot create would otherwise fail every later packer:run too).
    if (!recorded.changed) throw error
    await recorded.restore()
    throw intentWithdrawn(error, p.group.name, recorded.file, io)
  }
  outcome.outputs = result.outputs
  outcome.applied = hasChanges(result.changes)
  if (!p.preview) {
    outcome.preview = result.changes
    io.showPreview([result.changes])
  }
}
