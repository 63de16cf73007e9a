// The verbs over whole stacks: up (converge everything recorded), preview (many stacks, for
// review), destroy, and reading a stack's outputs.
import {InterruptedError, UserError} from '../errors.js'
import {mapBounded} from '../lib/parallel.js'
import {type ChangeSet, hasChanges} from '../stacks/changes.js'
import {buildContext} from '../stacks/context.js'
import {withdrawIntent, type Withdrawable} from '../stacks/intent.js'
import {groupProgram} from '../stacks/program.js'
import {type GroupStack, groupArgs} from '../stacks/workspace.js'
import {stackName} from '../nodes/environments.js'
import {runHooks} from './engine-output.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'
import {type ApplyResult, updateStacks} from './update.js'

export interface UpOptions extends ProjectOptions {
  groups?: string[] | undefined
  previewOnly: boolean
  /** After an interrupted update: clear pending creates first. */
  clearPending: boolean
  /** Parts whose recorded intent to take back first (their resources then go). */
  withdraw?: readonly Withdrawable[]
}

/** muster up: converge each group's stack to everything its verbs recorded. */
export async function up(options: UpOptions, io: IoHost): Promise<ApplyResult> {
  const project = new Project(options, io)
  const groups = project.select(options.groups, undefined, undefined, {what: 'nodes', done: 'nothing was changed'})
  const withdraw = options.withdraw ?? []
  return updateStacks(project, {groups, change: (intent) => withdrawIntent(intent, withdraw), parts: undefined, previewOnly: options.previewOnly, clearPending: options.clearPending}, io)
}

/** Programs an opened stack with what it records, against the current nodes file (as seen from its environment); writes nothing. */
async function programmed(project: Project, stack: GroupStack): Promise<GroupStack> {
  const group = project.group(stack.group)
  stack.setProgram(groupProgram(buildContext(project.root, project.nodes, group, await stack.intent(), await project.contextInputs(group)).program))
  return stack
}

export interface PreviewOptions extends ProjectOptions {
  groups?: string[] | undefined
}

export interface PreviewResult {
  /** The environment previewed (--env, MUSTER_ENV or the file's default); undefined without environments. */
  environment?: string | undefined
  sets: ChangeSet[]
  errors: Array<{stack: string; message: string}>
  /** Stacks of this project whose group the nodes file no longer has (only when no group is named). */
  orphans: string[]
  /** The nodes file, as the orphans' message names it. */
  nodesFile: string
  /** 0 no changes, 2 changes (an orphan stack counts: destroying it is a change), 1 an error (like `terraform plan -detailed-exitcode`). */
  exitCode: 0 | 1 | 2
}

/**
 * The project's stacks whose group is gone from the nodes file: nothing reaches them by a group's
 * verb any more, so preview and status list them and destroy takes them down. In an environment,
 * only that environment's stacks (GROUP.ENV) are looked at: another environment's stacks are its
 * own to list. Without environments, every stack that is not a group's (a GROUP.ENV stack left
 * from when the file had environments included).
 */
export async function orphanStacks(project: Project): Promise<string[]> {
  return orphansAmong(await project.session().stackNames(), project.nodes.groups, project.nodes.environment, [...project.nodes.environments.keys()])
}

/**
 * The environment a stack name belongs to among those declared: `GROUP.ENV` with ENV declared; else
 * undefined (a stack from before the file had environments, GROUP, or of an environment since renamed
 * or dropped, GROUP.OLD).
 */
export function declaredEnvironmentOf(name: string, environments: readonly string[]): string | undefined {
  const dot = name.lastIndexOf('.')
  const suffix = dot < 0 ? undefined : name.slice(dot + 1)
  return suffix !== undefined && environments.includes(suffix) ? suffix : undefined
}

/**
 * Pure: which of these stack names are orphans, seen from an environment (or from a file without any).
 * In an environment: its own stacks whose group is gone, and every stack of no declared environment
 * (which no environment would otherwise list: a GROUP stack from before the file had environments,
 * that may still run a fleet, or GROUP.OLD of a renamed environment).
 */
export function orphansAmong(names: readonly string[], groups: ReadonlyMap<string, unknown>, environment: string | undefined, environments: readonly string[] = []): string[] {
  if (environment === undefined) return names.filter((name) => !groups.has(name))
  const suffix = `.${environment}`
  const own = names.filter((name) => name.endsWith(suffix) && !groups.has(name.slice(0, -suffix.length)))
  const declared = [...new Set([...environments, environment])]
  return [...own, ...names.filter((name) => declaredEnvironmentOf(name, declared) === undefined)]
}

/** Previews every recorded part of many stacks in parallel, for review; changes nothing. */
export async function preview(options: PreviewOptions, io: Pick<IoHost, 'progress' | 'interrupt'>): Promise<PreviewResult> {
  const project = new Project(options, io)
  const named = options.groups !== undefined && options.groups.length > 0
  // With no GROUP, __base__ too when a group builds from it: a new base image is a change to review.
  const groups = project.withBaseFirst(project.select(options.groups, undefined, undefined, {what: 'nodes', done: 'nothing was changed'}), named)
  const session = project.session()
  const results = await mapBounded(groups, project.parallel, async (group) => {
    try {
      const stack = await programmed(project, await session.openOrCreate(group))
      io.progress(`[${group.name}] previewing…`)
      return {set: await stack.preview(undefined, {}, io.interrupt)}
    } catch (error) {
      // The hint travels with the message: a preview reports many groups' errors and exits once.
      const hint = error instanceof UserError && error.hint ? `\n${error.hint}` : ''
      return {error: {stack: stackName(group), message: `${error instanceof Error ? error.message : String(error)}${hint}`}}
    }
  })
  if (io.interrupt?.aborted) throw new InterruptedError('interrupted (Ctrl-C) while previewing; nothing was changed', {hint: 'Run the preview again.'})
  const sets = results.flatMap((r) => ('set' in r && r.set ? [r.set] : []))
  const errors = results.flatMap((r) => ('error' in r && r.error ? [r.error] : []))
  const orphans = options.groups && options.groups.length > 0 ? [] : await orphanStacks(project)
  const exitCode = errors.length > 0 ? 1 : sets.some(hasChanges) || orphans.length > 0 ? 2 : 0
  return {environment: project.nodes.environment, sets, errors, orphans, nodesFile: project.nodes.file, exitCode}
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
  const stack = await destroyable(project, options.group, io)
  const planned = await stack.destroy({previewOnly: true, remove: false}, runHooks(stack.group, io, {events: false}))
  io.showPreview([planned])
  if (options.previewOnly) return planned
  await io.confirm({
    question: `Destroy every resource of ${stack.name}? This cannot be undone.`,
    unattended: {message: `destroying ${stack.name} needs confirmation and there is no terminal`, hint: `Review the preview above, then run: muster destroy ${groupArgs(stack.target)} --yes`},
    declined: {message: 'nothing was destroyed'},
  })
  return stack.destroy({previewOnly: false, remove: options.remove}, runHooks(stack.group, io, {events: true}), io.interrupt)
}

/**
 * The stack destroy works on: the group's, programmed from the nodes file; or, for a name the nodes
 * file no longer has, the orphan stack of that name. A destroy never runs its program (the engine
 * deletes what the stack's state holds, and muster's command resources delete nothing outside
 * it), so an orphan gets an empty one: what it recorded is all there is to take down.
 */
async function destroyable(project: Project, name: string, io: Pick<IoHost, 'progress'>): Promise<GroupStack> {
  if (!project.nodes.groups.has(name) && isUsableStackName(name)) {
    // In an environment, the orphan is that environment's stack of the name (GROUP.ENV); GROUP.OLD of
    // an environment the file no longer declares is that stack itself.
    const environment = project.nodes.environment
    const foreign = environment !== undefined && name.includes('.') && declaredEnvironmentOf(name, [...project.nodes.environments.keys()]) === undefined
    const target = {name, environment: foreign ? undefined : environment}
    const orphan = await project.session().openExisting(target)
    if (orphan) {
      io.progress(`${orphan.name} has no group in ${project.nodes.file}: destroying what its stack recorded`)
      orphan.setProgram(async () => ({}))
      return orphan
    }
  }
  const group = project.group(name, {what: 'nodes', done: 'nothing was destroyed (muster packer:delete __base__ retires the base image)'})
  return programmed(project, await project.session().require(group))
}

/**
 * A name Pulumi could hold as a stack (what a group name may be, or GROUP.ENV: an environment's stack
 * left from when the file had environments), so nothing else reaches the engine.
 */
const isUsableStackName = (name: string): boolean => /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,32})?$/.test(name)

/** A group's stack outputs (in the environment the project is seen from), or undefined when it has no stack yet. Changes nothing. */
export async function readStackOutputs(project: Project, group: string): Promise<Record<string, unknown> | undefined> {
  const stack = await project.session().openExisting({name: group, environment: project.nodes.environment})
  return stack?.outputs()
}
