// The one flow every mutating stack verb follows: resolve the groups, build each group's program
// with the intent the verb asks for, preview the verb's part of each stack, show it, ask (or
// --yes), record the intent in stack config, and update only that part — groups in parallel,
// bounded.
import {closeSync, existsSync, openSync, readdirSync, readSync, statSync} from 'node:fs'
import {createRequire} from 'node:module'
import {cpus} from 'node:os'
import {delimiter, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {EngineEvent} from '@pulumi/pulumi/automation/index.js'

import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {BASE, type Group, type NodesFile, requireGroup} from '../nodes/model.js'
import {type Backend, chooseBackend} from './backend.js'
import {type ChangeSet, collectChanges, hasChanges, nameOfUrn} from './changes.js'
import {buildContext} from './context.js'
import type {Intent} from './intent.js'
import {mapBounded} from '../lib/parallel.js'
import {groupProgram, type Part, PART_COMPONENTS} from './program.js'
import {type GroupStack, openGroupStack} from './workspace.js'

/** What a verb gets to talk to the person running it; stderr only, stdout is for results. */
export interface StackIO {
  progress(line: string): void
  /** Streamed engine output (Packer's log lines, …). */
  stream(group: string, line: string): void
  /** Shows every group's preview, before any question. */
  showPreview(sets: readonly ChangeSet[]): void
  confirm(question: string): Promise<boolean>
  interactive: boolean
}

export interface ApplyOptions {
  cwd: string
  nodesPath?: string | undefined
  /** Named groups, or undefined for every group `applies` accepts. */
  groups?: string[] | undefined
  applies?: (group: Group) => boolean
  /** Refuse a named group with a user error (e.g. packer:run on packer: false). */
  check?: (group: Group) => void
  change: (intent: Intent, group: Group) => Intent
  /** Parts to update; undefined updates everything recorded (muster up). */
  parts?: Part[] | undefined
  yes: boolean
  previewOnly: boolean
  parallel?: number | undefined
  env?: Record<string, string>
  /** After an interrupted update: clear pending creates before previewing. */
  clearPending?: boolean
  /** Leave out groups that have no stack yet instead of creating one (packer:delete). */
  onlyExisting?: boolean
  /** Stream the engine's own output (--verbose). */
  verbose?: boolean
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

const MUSTER_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

export const defaultParallel = (): number => Math.max(1, cpus().length)

export function selectStackGroups(nodes: NodesFile, names: string[] | undefined, applies: (g: Group) => boolean, check?: (g: Group) => void): Group[] {
  if (names && names.length > 0) {
    return names.map((name) => {
      const group = requireGroup(nodes, name)
      check?.(group)
      return group
    })
  }
  const groups = [...nodes.groups.values()].filter((g) => g.name !== BASE && applies(g))
  if (groups.length === 0) throw new UserError('no group to act on', {hint: 'Name a group, or check the nodes file (muster ls).'})
  return groups
}

// The engine runs muster's command resources with the Node dynamic-provider host. muster puts its
// own launcher (bin/pulumi-resource-pulumi-nodejs) first on PATH and points it at its own copy of
// the SDK: a Pulumi CLI built without the launcher still works, the versions match, and the host
// is the process the engine stops (the SDK's sh launcher would leave node running).
const requireHere = createRequire(import.meta.url)
const DYNAMIC_PROVIDER = requireHere.resolve('@pulumi/pulumi/cmd/dynamic-provider/index.js')
const SDK_DIR = dirname(requireHere.resolve('@pulumi/pulumi/package.json'))
const NODE_MODULES = dirname(dirname(SDK_DIR))
const LAUNCHER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin')

/** Variables the engine passes on to muster's own commands inside the stack (see bake.ts). */
export function engineEnv(root: string, backend: Backend, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...backend.env,
    MUSTER_ROOT: root,
    // Two variables, each quoted where used, so paths with spaces survive the shell.
    MUSTER_NODE: process.execPath,
    MUSTER_BIN: MUSTER_BIN,
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    ...extra,
    MUSTER_DYNAMIC_PROVIDER: DYNAMIC_PROVIDER,
    PATH: [LAUNCHER_DIR, extra.PATH ?? process.env.PATH ?? ''].filter(Boolean).join(delimiter),
    NODE_PATH: [NODE_MODULES, extra.NODE_PATH ?? process.env.NODE_PATH ?? ''].filter(Boolean).join(delimiter),
  }
}

export function progressReporter(group: string, io: StackIO): (event: EngineEvent) => void {
  return (event) => {
    const pre = event.resourcePreEvent?.metadata
    if (pre && pre.op !== 'same' && !pre.type.startsWith('pulumi:')) io.progress(`[${group}] ${pre.op} ${pre.type} ${nameOfUrn(pre.urn)}…`)
    const done = event.resOutputsEvent?.metadata
    if (done && done.op !== 'same' && !done.type.startsWith('pulumi:')) io.progress(`[${group}] ${done.op} ${nameOfUrn(done.urn)} done`)
    const failed = event.resOpFailedEvent
    if (failed) io.progress(`[${group}] ${failed.metadata.op} ${nameOfUrn(failed.metadata.urn)} failed`)
    const diagnostic = event.diagnosticEvent
    if (diagnostic && diagnostic.urn && !diagnostic.ephemeral) {
      for (const line of diagnostic.message.replace(/\n$/, '').split('\n')) io.stream(group, line)
    }
  }
}

/**
 * Streams what the part commands write (Packer's log, retention's report) while they run: they
 * run in the engine's provider process, which writes .muster/logs/GROUP-PART.log; this follows
 * those files. Returns a function that reads what is left and stops.
 */
export function tailPartLogs(root: string, group: string, io: StackIO, intervalMs = 250): () => void {
  const dir = join(root, '.muster', 'logs')
  const offsets = new Map<string, number>()
  const pending = new Map<string, string>()
  const started = Date.now()
  const poll = (flush: boolean): void => {
    if (!existsSync(dir)) return
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(`${group}-`) || !name.endsWith('.log')) continue
      const file = join(dir, name)
      const stat = statSync(file)
      // A log left by an earlier run is not news.
      if (stat.mtimeMs < started - 1000 && !offsets.has(file)) continue
      let offset = offsets.get(file) ?? 0
      if (stat.size < offset) offset = 0 // truncated: a new run of that part
      if (stat.size === offset) continue
      const fd = openSync(file, 'r')
      const buffer = Buffer.alloc(stat.size - offset)
      readSync(fd, buffer, 0, buffer.length, offset)
      closeSync(fd)
      offsets.set(file, stat.size)
      const text = (pending.get(file) ?? '') + buffer.toString('utf8')
      const lines = text.split('\n')
      pending.set(file, flush ? '' : (lines.pop() ?? ''))
      for (const line of lines) if (line !== '' || !flush) io.stream(group, line)
    }
  }
  const timer = setInterval(() => poll(false), intervalMs)
  return () => {
    clearInterval(timer)
    poll(true)
  }
}

/** The engine's own text output, line by line, prefixed with the group. */
export function engineOutput(group: string, io: StackIO): (text: string) => void {
  return (text) => {
    for (const line of text.replace(/\n$/, '').split('\n')) io.stream(group, line)
  }
}

export function targetsFor(stack: GroupStack, parts: Part[] | undefined): string[] | undefined {
  if (!parts) return undefined
  return parts.flatMap((part) => stack.componentTargets(PART_COMPONENTS[part].type, PART_COMPONENTS[part].name))
}

export async function applyParts(options: ApplyOptions, io: StackIO): Promise<ApplyResult> {
  const root = options.cwd
  const nodes = loadNodes({cwd: root, path: options.nodesPath})
  const groups = selectStackGroups(nodes, options.groups, options.applies ?? (() => true), options.check)
  const backend = chooseBackend(root, {...process.env, ...options.env})
  if (backend.created) io.progress(`State lives in ${backend.describe}; it is git-ignored. Set PULUMI_BACKEND_URL or Pulumi.yaml backend.url to share it.`)
  const env = engineEnv(root, backend, options.env)
  const parallel = options.parallel ?? defaultParallel()

  const found = await mapBounded(groups, parallel, async (group) => {
    // The recorded intent is read with a program-less look first; the program depends on it.
    try {
      return {group, probe: await openGroupStack({root, backend, env}, group.name, async () => ({}), {create: !options.onlyExisting})}
    } catch (error) {
      if (options.onlyExisting && error instanceof UserError && /has no stack yet/.test(error.message)) return undefined
      throw error
    }
  })
  const existing = found.filter((f): f is NonNullable<typeof f> => f !== undefined)
  const prepared = await mapBounded(existing, parallel, async ({group, probe: stack}) => {
    const intent = options.change(await stack.intent(), group)
    const context = buildContext(root, nodes, group, intent, {writeTemplate: !options.previewOnly})
    stack.setProgram(groupProgram(context))
    if (options.clearPending) {
      io.progress(`[${group.name}] clearing pending operations (refresh)…`)
      await stack.clearPending()
    }
    // With --yes nobody is asked, so the separate preview is skipped: the update itself reports
    // what it changed (the engine previews each step anyway), which halves the engine's work.
    if (options.yes && !options.previewOnly) return {group, intent, stack, preview: undefined}
    io.progress(`[${group.name}] previewing…`)
    const preview = await stack.preview(targetsFor(stack, options.parts), options.verbose ? {onOutput: engineOutput(group.name, io)} : {})
    return {group, intent, stack, preview}
  })

  const outcomes: GroupOutcome[] = prepared.map((p) => ({group: p.group.name, intent: p.intent, preview: p.preview ?? collectChanges(p.group.name, []), applied: false}))
  const previews = prepared.flatMap((p) => (p.preview ? [p.preview] : []))
  if (previews.length > 0) io.showPreview(previews)
  if (options.previewOnly) return {backend: backend.describe, groups: outcomes}

  const changing = prepared.filter((p) => p.preview && hasChanges(p.preview))
  if (changing.length > 0 && !options.yes) {
    if (!io.interactive) {
      throw new UserError('this changes infrastructure and there is no terminal to ask for confirmation', {hint: 'Review the preview above, then run again with --yes (or --preview to only preview).'})
    }
    const ok = await io.confirm(`Apply these changes to ${changing.map((p) => p.group.name).join(', ')}?`)
    if (!ok) throw new UserError('nothing was changed', {hint: 'Run again and answer yes, or use --preview to only look.', exitCode: 1})
  }

  await mapBounded(prepared, parallel, async (p, index) => {
    await p.stack.recordIntent(p.intent)
    const outcome = outcomes[index] as GroupOutcome
    if (!p.preview || hasChanges(p.preview)) {
      io.progress(`[${p.group.name}] updating…`)
      const stopTail = tailPartLogs(root, p.group.name, io)
      const result = await p.stack
        .up(targetsFor(p.stack, options.parts), {
          onEvent: progressReporter(p.group.name, io),
          ...(options.verbose ? {onOutput: engineOutput(p.group.name, io)} : {}),
        })
        .finally(stopTail)
      outcome.outputs = result.outputs
      outcome.applied = hasChanges(result.changes)
      if (!p.preview) {
        outcome.preview = result.changes
        io.showPreview([result.changes])
      }
    } else {
      outcome.outputs = await p.stack.outputs()
    }
  })
  return {backend: backend.describe, groups: outcomes}
}

export interface PreviewOptions {
  cwd: string
  nodesPath?: string | undefined
  groups?: string[] | undefined
  parallel?: number | undefined
  env?: Record<string, string>
}

export interface PreviewResult {
  sets: ChangeSet[]
  errors: Array<{stack: string; message: string}>
  /** 0 no changes, 2 changes, 1 an error (like `terraform plan -detailed-exitcode`). */
  exitCode: 0 | 1 | 2
}

/** Previews every recorded part of many stacks in parallel, for review; changes nothing. */
export async function previewGroups(options: PreviewOptions, io: Pick<StackIO, 'progress'>): Promise<PreviewResult> {
  const root = options.cwd
  const nodes = loadNodes({cwd: root, path: options.nodesPath})
  const groups = selectStackGroups(nodes, options.groups, () => true)
  const backend = chooseBackend(root, {...process.env, ...options.env})
  const env = engineEnv(root, backend, options.env)
  const results = await mapBounded(groups, options.parallel ?? defaultParallel(), async (group) => {
    try {
      const stack = await openGroupStack({root, backend, env}, group.name, async () => ({}), {create: true})
      stack.setProgram(groupProgram(buildContext(root, nodes, group, await stack.intent(), {writeTemplate: false})))
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

export interface DestroyOptions {
  cwd: string
  nodesPath?: string | undefined
  group: string
  yes: boolean
  previewOnly: boolean
  /** Also remove the stack and its config file once empty. */
  remove: boolean
  env?: Record<string, string>
}

/** Tears a group's stack down after a preview and a confirmation. */
export async function destroyGroup(options: DestroyOptions, io: StackIO): Promise<ChangeSet> {
  const root = options.cwd
  const nodes = loadNodes({cwd: root, path: options.nodesPath})
  const group = requireGroup(nodes, options.group)
  const backend = chooseBackend(root, {...process.env, ...options.env})
  const env = engineEnv(root, backend, options.env)
  const stack = await openGroupStack({root, backend, env}, group.name, async () => ({}), {create: false})
  stack.setProgram(groupProgram(buildContext(root, nodes, group, await stack.intent(), {writeTemplate: false})))
  const preview = await stack.destroy({previewOnly: true, remove: false})
  io.showPreview([preview])
  if (options.previewOnly) return preview
  if (!options.yes) {
    if (!io.interactive) throw new UserError(`destroying ${group.name} needs confirmation and there is no terminal`, {hint: `Review the preview above, then run: muster destroy ${group.name} --yes`})
    if (!(await io.confirm(`Destroy every resource of ${group.name}? This cannot be undone.`))) throw new UserError('nothing was destroyed')
  }
  return stack.destroy({previewOnly: false, remove: options.remove}, {onEvent: progressReporter(group.name, io)})
}

/** A group's stack outputs, or undefined when it has no stack yet. Changes nothing. */
export async function readStackOutputs(options: {cwd: string; group: string; env?: Record<string, string>}): Promise<Record<string, unknown> | undefined> {
  const backend = chooseBackend(options.cwd, {...process.env, ...options.env})
  const env = engineEnv(options.cwd, backend, options.env)
  try {
    const stack = await openGroupStack({root: options.cwd, backend, env}, options.group, async () => ({}), {create: false})
    return await stack.outputs()
  } catch (error) {
    if (error instanceof UserError && /has no stack yet/.test(error.message)) return undefined
    throw error
  }
}
