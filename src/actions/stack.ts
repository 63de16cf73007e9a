// The verbs over whole stacks: up (converge everything recorded), preview (many stacks, for
// review), destroy, and reading a stack's outputs.
import {mapBounded} from '../lib/parallel.js'
import {type ChangeSet, hasChanges} from '../stacks/changes.js'
import {buildContext} from '../stacks/context.js'
import {groupProgram} from '../stacks/program.js'
import type {GroupStack} from '../stacks/workspace.js'
import {runHooks} from './engine-output.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface UpOptions extends ProjectOptions {
  groups?: string[] | undefined
  previewOnly: boolean
  /** After an interrupted update: clear pending creates first. */
  clearPending: boolean
}

/** muster up: converge each group's stack to everything its verbs recorded. */
export async function up(options: UpOptions, io: IoHost): Promise<ApplyResult> {
  const project = new Project(options, io)
  const groups = project.select(options.groups, undefined, undefined, {what: 'nodes', done: 'nothing was changed'})
  return updateStacks(project, {groups, change: (intent) => intent, parts: undefined, previewOnly: options.previewOnly, clearPending: options.clearPending}, io)
}

/** Programs an opened stack with what it records, against the current nodes file; writes nothing. */
async function programmed(project: Project, stack: GroupStack): Promise<GroupStack> {
  stack.setProgram(groupProgram(buildContext(project.root, project.nodes, project.group(stack.group), await stack.intent()).program))
  return stack
}

export interface PreviewOptions extends ProjectOptions {
  groups?: string[] | undefined
}

export interface PreviewResult {
  sets: ChangeSet[]
  errors: Array<{stack: string; message: string}>
  /** 0 no changes, 2 changes, 1 an error (like `terraform plan -detailed-exitcode`). */
  exitCode: 0 | 1 | 2
}

/** Previews every recorded part of many stacks in parallel, for review; changes nothing. */
export async function preview(options: PreviewOptions, io: Pick<IoHost, 'progress'>): Promise<PreviewResult> {
  const project = new Project(options, io)
  const groups = project.select(options.groups, undefined, undefined, {what: 'nodes', done: 'nothing was changed'})
  const session = project.session()
  const results = await mapBounded(groups, project.parallel, async (group) => {
    try {
      const stack = await programmed(project, await session.openOrCreate(group.name))
      io.progress(`[${group.name}] previewing…`)
      return {set: await stack.preview(undefined)}
    } catch (error) {
      return {error: {stack: group.name, message: error instanceof Error ? error.message : String(error)}}
    }
  })
  const sets = results.flatMap((r) => ('set' in r && r.set ? [r.set] : []))
  const errors = results.flatMap((r) => ('error' in r && r.error ? [r.error] : []))
  const exitCode = errors.length > 0 ? 1 : sets.some(hasChanges) ? 2 : 0
  return {sets, errors, exitCode}
}

export interface DestroyOptions extends ProjectOptions {
  group: string
  previewOnly: boolean
  /** Also remove the stack and its config file once empty. */
  remove: boolean
}

/** Tears a group's stack down after a preview and a confirmation. */
export async function destroy(options: DestroyOptions, io: IoHost): Promise<ChangeSet> {
  const project = new Project(options, io)
  const group = project.group(options.group, {what: 'nodes', done: 'nothing was destroyed (muster packer:delete __base__ retires the base image)'})
  const stack = await programmed(project, await project.session().require(group.name))
  const planned = await stack.destroy({previewOnly: true, remove: false}, runHooks(group.name, io, {events: false}))
  io.showPreview([planned])
  if (options.previewOnly) return planned
  await io.confirm({
    question: `Destroy every resource of ${group.name}? This cannot be undone.`,
    unattended: {message: `destroying ${group.name} needs confirmation and there is no terminal`, hint: `Review the preview above, then run: muster destroy ${group.name} --yes`},
    declined: {message: 'nothing was destroyed'},
  })
  return stack.destroy({previewOnly: false, remove: options.remove}, runHooks(group.name, io, {events: true}))
}

/** A group's stack outputs, or undefined when it has no stack yet. Changes nothing. */
export async function readStackOutputs(project: Project, group: string): Promise<Record<string, unknown> | undefined> {
  const stack = await project.session().openExisting(group)
  return stack?.outputs()
}
