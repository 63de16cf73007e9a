// The Automation API behind one small interface: open a group's stack (one project, stack name =
// group name, or GROUP.ENV in a nodes file with environments; config in stacks/), read and record
// intent, preview/up/destroy a part of it, and turn Pulumi's errors into user errors with the next step.
import {existsSync, readFileSync} from 'node:fs'
import {join, relative} from 'node:path'
import {parse} from 'yaml'

import {
  CommandError,
  ConcurrentUpdateError,
  type EngineEvent,
  LocalWorkspace,
  PulumiCommand,
  type PulumiFn,
  Stack,
  StackNotFoundError,
} from '@pulumi/pulumi/automation/index.js'

import {atomicWriteSync} from '../lib/atomic-write.js'
import {InterruptedError, UserError} from '../errors.js'
import {stackName} from '../nodes/environments.js'
import {type Backend, newStackRefusal, SECRETS_PROVIDER_ENV} from './backend.js'
import {type ChangeSet, collectChanges} from './changes.js'
import {CONFIG_NAMESPACE, type ConfigMap, type Intent, intentFromConfig, intentToConfig} from './intent.js'
import {describeHolder, type LockHolder, lockDir, lockHolders} from './locks.js'

/**
 * How long after Ctrl-C muster waits for the engine to say it is cancelling before telling it
 * itself: a terminal's Ctrl-C reaches the Pulumi CLI too (same process group), and a second SIGINT
 * would make the CLI stop at once instead of after its current step.
 */
const FORWARD_GRACE_MS = 1500
const CANCELLING = /received; cancelling|cancell?ing the update|update (was )?cancell?ed/i

export const DEFAULT_PROJECT_YAML = `# One Pulumi project for the fleet; muster makes one stack per node group.
name: muster
runtime: nodejs
description: EC2 node groups managed by muster
stackConfigDir: stacks
`

export interface StackContext {
  root: string
  backend: Backend
  /** Extra variables for the pulumi processes (on top of process.env). */
  env?: Record<string, string>
}

export interface RunHooks {
  onEvent?: (event: EngineEvent) => void
  onOutput?: (text: string) => void
}

export interface UpResult {
  outputs: Record<string, unknown>
  changes: ChangeSet
}

export interface ProjectSettings {
  name: string
  /** Where stack config files live, relative to the root ('' when Pulumi.yaml sets none). */
  stackConfigDir: string
}

/** The project name from Pulumi.yaml, writing muster's default project file when there is none. */
export function ensureProject(root: string): string {
  return projectSettings(root).name
}

/** Pulumi.yaml's settings muster uses, writing muster's default project file when there is none. */
export function projectSettings(root: string): ProjectSettings {
  const file = join(root, 'Pulumi.yaml')
  if (!existsSync(file)) atomicWriteSync(file, DEFAULT_PROJECT_YAML)
  const project = parse(readFileSync(file, 'utf8')) as {name?: unknown; stackConfigDir?: unknown} | null
  if (typeof project?.name !== 'string') throw new UserError(`${file} has no project name`, {hint: 'Add a line like "name: muster" to Pulumi.yaml.'})
  return {name: project.name, stackConfigDir: stackConfigDirOf(project)}
}

/** Where stack config files live, read without writing a project file: muster's default (stacks) when there is none. */
export function readStackConfigDir(root: string): string {
  const file = join(root, 'Pulumi.yaml')
  if (!existsSync(file)) return stackConfigDirOf(parse(DEFAULT_PROJECT_YAML) as {stackConfigDir?: unknown})
  return stackConfigDirOf(parse(readFileSync(file, 'utf8')) as {stackConfigDir?: unknown} | null)
}

const stackConfigDirOf = (project: {stackConfigDir?: unknown} | null): string => (typeof project?.stackConfigDir === 'string' ? project.stackConfigDir : '')

/**
 * The stack of a group: the group's name and, in a nodes file with environments, the environment
 * it is resolved in (a resolved Group fits). Its stack is GROUP, or GROUP.ENV (stackName).
 */
export interface StackTarget {
  name: string
  environment?: string | undefined
}

export const asTarget = (target: StackTarget | string): StackTarget => (typeof target === 'string' ? {name: target} : target)

/** How a verb names the group again in a hint: "GROUP", or "GROUP --env ENV". */
export const groupArgs = (target: StackTarget | string): string => {
  const t = asTarget(target)
  return t.environment === undefined ? t.name : `${t.name} --env ${t.environment}`
}

/** The stack's config file name: Pulumi.GROUP.yaml, or Pulumi.GROUP.ENV.yaml. */
export const stackConfigFileName = (target: StackTarget | string): string => `Pulumi.${stackName(asTarget(target))}.yaml`

/**
 * What recording an intent changed, and how to take it back: the stack's config file as it was
 * before, put back in one atomic rename when the update that follows fails, so a failed verb
 * leaves the group as it was (its intent never blocks the next verb).
 */
export interface RecordedIntent {
  /** The stack's config file, relative to the project root (stacks/Pulumi.GROUP.yaml, or Pulumi.GROUP.ENV.yaml). */
  file: string
  /** Whether recording changed anything. */
  changed: boolean
  /** Puts the config file back as it was before recording; does nothing when nothing changed. */
  restore(): Promise<void>
}

export class GroupStack {
  /** The group's name. */
  readonly group: string
  /** The environment the group is resolved in; undefined in a nodes file without environments. */
  readonly environment: string | undefined
  /** The stack's name: GROUP, or GROUP.ENV. */
  readonly name: string
  /** Absolute path of the stack's config file (stacks/Pulumi.GROUP.yaml, or Pulumi.GROUP.ENV.yaml). */
  readonly configFile: string

  constructor(
    target: StackTarget | string,
    readonly project: string,
    private readonly stack: Stack,
    configFile?: string,
    /** The file backend's lock directory of this stack; undefined on other backends. */
    private readonly lockDirectory: string | undefined = undefined,
  ) {
    const t = asTarget(target)
    this.group = t.name
    this.environment = t.environment
    this.name = stackName(t)
    this.configFile = configFile ?? join(stack.workspace.workDir, stackConfigFileName(t))
  }

  /** The group (and environment) as a verb's arguments name them in hints. */
  get target(): StackTarget {
    return {name: this.group, environment: this.environment}
  }

  /** Who holds this stack's lock (empty: unlocked); undefined when the backend cannot say. */
  locks(): LockHolder[] | undefined {
    return lockHolders(this.lockDirectory)
  }

  /** What an interrupted update left pending ("creating packer-build"), from the stack's state. */
  async pendingOperations(): Promise<string[]> {
    const state = await this.translate(() => this.stack.exportStack())
    const deployment = state.deployment as {pending_operations?: Array<{type?: unknown; resource?: {urn?: unknown}}>} | undefined
    return (deployment?.pending_operations ?? []).map((op) => `${String(op.type ?? 'operation')} ${String(op.resource?.urn ?? '').split('::').pop() ?? ''}`.trim())
  }

  /** Clears the stack's lock (pulumi cancel, with muster's backend and passphrase). */
  async unlock(): Promise<void> {
    await this.translate(() => this.stack.cancel())
  }

  /** `urn:pulumi:STACK::PROJECT::TYPE::NAME`, and a pattern for everything beneath a component. */
  urn(type: string, name: string): string {
    return `urn:pulumi:${this.name}::${this.project}::${type}::${name}`
  }

  componentTargets(type: string, name: string): string[] {
    return [this.urn(type, name), `urn:pulumi:${this.name}::${this.project}::${type}$**`]
  }

  /** The program depends on the recorded intent, so a stack is opened first and programmed after. */
  setProgram(program: PulumiFn): void {
    this.stack.workspace.program = program
  }

  /** The config as last read, so recording the intent needs no second read (each is a CLI run). */
  private recorded: ConfigMap | undefined

  async intent(): Promise<Intent> {
    this.recorded = await this.stack.getAllConfig()
    return intentFromConfig(this.recorded)
  }

  async recordIntent(intent: Intent): Promise<RecordedIntent> {
    const config = intentToConfig(intent)
    const current = this.recorded ?? (await this.stack.getAllConfig())
    const changed = Object.entries(config).some(([key, value]) => current[key]?.value !== value.value)
    // Optional keys the intent no longer has (cleanedAt after packer:delete) must go, not linger.
    const stale = Object.keys(current).filter((key) => key.startsWith(`${CONFIG_NAMESPACE}:`) && !(key in config))
    const file = relative(this.stack.workspace.workDir, this.configFile) || this.configFile
    if (!changed && stale.length === 0) return {file, changed: false, restore: async () => undefined}
    // The file's bytes, not the config values: putting them back is one rename, keeps secrets,
    // comments and the encryption salt as they were, and needs no engine run that could fail too.
    const before = existsSync(this.configFile) ? readFileSync(this.configFile) : undefined
    if (changed) await this.stack.setAllConfig(config)
    if (stale.length > 0) await this.stack.removeAllConfig(stale)
    this.recorded = undefined
    const added = Object.keys(config).filter((key) => !(key in current))
    return {
      file,
      changed: true,
      restore: async () => {
        this.recorded = undefined
        if (before !== undefined) {
          atomicWriteSync(this.configFile, before)
          return
        }
        // No file before (a backend that keeps config elsewhere): take the values back instead.
        const previous = Object.fromEntries(Object.entries(current).filter(([key]) => key.startsWith(`${CONFIG_NAMESPACE}:`)))
        if (Object.keys(previous).length > 0) await this.stack.setAllConfig(previous)
        if (added.length > 0) await this.stack.removeAllConfig(added)
      },
    }
  }

  /**
   * Engine options that also keep every event, so the caller gets the changes back; and, on Ctrl-C,
   * the engine asked to stop after its current step (SIGINT, as the Pulumi CLI does), unless it
   * already got the terminal's own Ctrl-C.
   */
  private recording(targets: string[] | undefined, hooks: RunHooks, interrupt: AbortSignal | undefined) {
    const events: EngineEvent[] = []
    let cancelling = false
    const forward = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const onInterrupt = (): void => {
      timer = setTimeout(() => {
        if (!cancelling) forward.abort()
      }, FORWARD_GRACE_MS)
    }
    if (interrupt?.aborted) onInterrupt()
    else interrupt?.addEventListener('abort', onInterrupt, {once: true})
    const options = {
      ...(targets ? {target: targets} : {}),
      onEvent: (event: EngineEvent) => {
        events.push(event)
        hooks.onEvent?.(event)
      },
      onOutput: (text: string) => {
        if (CANCELLING.test(text)) cancelling = true
        hooks.onOutput?.(text)
      },
      signal: forward.signal,
    }
    const done = (): void => {
      clearTimeout(timer)
      interrupt?.removeEventListener('abort', onInterrupt)
    }
    return {events, options, done}
  }

  async preview(targets: string[] | undefined, hooks: RunHooks = {}, interrupt?: AbortSignal): Promise<ChangeSet> {
    const {events, options, done} = this.recording(targets, hooks, interrupt)
    await this.translate(() => this.stack.preview(options), interrupt, events).finally(done)
    return collectChanges(this.name, events)
  }

  async up(targets: string[] | undefined, hooks: RunHooks = {}, interrupt?: AbortSignal): Promise<UpResult> {
    const {events, options, done} = this.recording(targets, hooks, interrupt)
    const result = await this.translate(() => this.stack.up(options), interrupt, events).finally(done)
    return {outputs: Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value])), changes: collectChanges(this.name, events)}
  }

  async outputs(): Promise<Record<string, unknown>> {
    const outputs = await this.translate(() => this.stack.outputs())
    return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value]))
  }

  /** Destroys every resource; with previewOnly, only says what would go. */
  async destroy(destroy: {previewOnly: boolean; remove: boolean}, hooks: RunHooks = {}, interrupt?: AbortSignal): Promise<ChangeSet> {
    const {events, options, done} = this.recording(undefined, hooks, interrupt)
    await this.translate(() => this.stack.destroy({...options, previewOnly: destroy.previewOnly, remove: destroy.remove}), interrupt, events).finally(done)
    return collectChanges(this.name, events)
  }

  /** After an interrupted update: drop pending creates so the next update can proceed. */
  async clearPending(hooks: RunHooks = {}, interrupt?: AbortSignal): Promise<void> {
    const {options, done} = this.recording(undefined, hooks, interrupt)
    await this.translate(() => this.stack.refresh({clearPendingCreates: true, onOutput: options.onOutput, signal: options.signal}), interrupt).finally(done)
  }

  async removeStack(): Promise<void> {
    await this.translate(() => this.stack.workspace.removeStack(this.name))
  }

  private async translate<T>(run: () => Promise<T>, interrupt?: AbortSignal, events: readonly EngineEvent[] = []): Promise<T> {
    try {
      return await run()
    } catch (error) {
      if (interrupt?.aborted) throw this.interrupted(error, events)
      throw translatePulumiError(error, this.target, this.locks(), engineErrors(events))
    }
  }

  /** What an interrupted engine run left: the steps it finished, the one it stopped, the lock. */
  private interrupted(error: unknown, events: readonly EngineEvent[]): InterruptedError {
    const finished = events.flatMap((e) => {
      const m = e.resOutputsEvent?.metadata
      return m && m.op !== 'same' && !m.type.startsWith('pulumi:') ? [`${m.op} ${m.urn.split('::').pop() ?? m.urn}`] : []
    })
    const stopped = events.flatMap((e) => {
      const m = e.resOpFailedEvent?.metadata
      return m && !m.type.startsWith('pulumi:') ? [`${m.op} ${m.urn.split('::').pop() ?? m.urn}`] : []
    })
    const locked = this.locks()
    const parts = [
      'the engine stopped after its current step',
      finished.length > 0 ? `finished: ${finished.join(', ')}` : 'no step finished',
      stopped.length > 0 ? `stopped: ${stopped.join(', ')}${stopped.some((s) => s.endsWith(' packer-build')) ? ' (a stopped bake leaves no image: Packer removed its temporary instance)' : ''}` : '',
      locked === undefined ? '' : locked.length === 0 ? 'the stack is unlocked' : `the stack is still locked (${locked.map(describeHolder).join('; ')})`,
    ]
    const hint = locked !== undefined && locked.length > 0 ? `Clear the lock with: muster unlock ${groupArgs(this.target)}, then run the same command again.` : undefined
    return new InterruptedError(parts.filter(Boolean).join('; '), {...(hint ? {hint} : {}), cause: error})
  }
}

// One CLI lookup per process: without it every workspace runs `pulumi version` again.
let pulumiCommand: Promise<PulumiCommand> | undefined
function findPulumi(): Promise<PulumiCommand> {
  pulumiCommand ??= PulumiCommand.get().catch((error: unknown) => {
    pulumiCommand = undefined
    const text = error instanceof Error ? error.message : String(error)
    const notFound = /code: -2\b|ENOENT/.test(text)
    throw new UserError(notFound ? 'the Pulumi CLI (pulumi) is not on PATH' : `the Pulumi CLI could not be run: ${text.split('\n')[0] ?? ''}`, {
      hint: 'Install Pulumi (https://www.pulumi.com/docs/install/) and make sure `pulumi version` works in this shell.',
      cause: error,
    })
  })
  return pulumiCommand
}

/**
 * Opens (or with create, creates) the stack of a group, with no program yet: the program depends
 * on the intent the stack records, so it is set after reading it. Without create, a group that
 * has no stack gives undefined (the engine's StackNotFoundError, not a message match).
 */
export async function openGroupStack(context: StackContext, group: StackTarget | string, options: {create: boolean}): Promise<GroupStack | undefined> {
  const settings = projectSettings(context.root)
  const target = asTarget(group)
  const name = stackName(target)
  try {
    const workspace = await createWorkspace(context)
    const stack = await selectOrCreate(context, name, workspace, options.create)
    if (!stack) return undefined
    return new GroupStack(target, settings.name, stack, join(context.root, settings.stackConfigDir, stackConfigFileName(target)), lockDir(context.backend.url, settings.name, name))
  } catch (error) {
    if (!options.create && error instanceof StackNotFoundError) return undefined
    throw translatePulumiError(error, target)
  }
}

/** The stack config file of a group in its environment, relative to the root (read without the engine). */
export function stackConfigPath(root: string, target: StackTarget | string): string {
  return join(projectSettings(root).stackConfigDir, stackConfigFileName(target))
}

async function createWorkspace(context: StackContext): Promise<LocalWorkspace> {
  const provider = context.backend.secrets.provider
  return LocalWorkspace.create({
    pulumiCommand: await findPulumi(),
    workDir: context.root,
    envVars: {...context.backend.env, ...context.env, PULUMI_SKIP_UPDATE_CHECK: 'true'},
    // Used only when a stack is created; an existing stack keeps the provider it records.
    ...(provider ? {secretsProvider: provider} : {}),
  })
}

/**
 * Stack.createOrSelect, with muster's refusal in between: a new stack on a team backend with
 * nothing to keep its secrets gets a message naming both ways out instead of Pulumi's.
 */
async function selectOrCreate(context: StackContext, group: string, workspace: LocalWorkspace, create: boolean): Promise<Stack | undefined> {
  try {
    return await Stack.select(group, workspace)
  } catch (error) {
    if (!(error instanceof StackNotFoundError)) throw error
    if (!create) return undefined
    const refusal = newStackRefusal(context.backend, group)
    if (refusal) throw refusal
    return Stack.create(group, workspace)
  }
}

/** The names of this project's stacks in the backend (one per group that ever recorded something). */
export async function listProjectStacks(context: StackContext): Promise<string[]> {
  projectSettings(context.root)
  try {
    const workspace = await createWorkspace(context)
    // On a file or S3 backend the names come back project-qualified (organization/PROJECT/NAME).
    return (await workspace.listStacks()).map((summary) => summary.name.split('/').pop() ?? summary.name).sort()
  } catch (error) {
    throw translatePulumiError(error, '(listing stacks)')
  }
}

/** What a verb that needs an existing stack says when the group has none. */
export function noStackError(group: StackTarget | string, cause?: unknown): UserError {
  const t = asTarget(group)
  const which = t.environment === undefined ? `group ${t.name}` : `group ${t.name} in environment ${t.environment} (stack ${stackName(t)})`
  return new UserError(`${which} has no stack yet`, {hint: `Create it with a verb that records something, e.g. muster packer:run ${groupArgs(t)} or muster autoscale:run ${groupArgs(t)}.`, cause})
}

/** Pulumi's typed errors and well-known failures become user errors that say what to do. */
/** The engine's error diagnostics of a run, each once (the engine repeats them per step and in its summary). */
function engineErrors(events: readonly EngineEvent[]): string[] {
  const messages = events.flatMap((e) => {
    const d = e.diagnosticEvent
    return d && d.severity === 'error' && d.urn && !d.urn.includes('::pulumi:pulumi:Stack::') ? [d.message.trim()] : []
  })
  return [...new Set(messages)].filter(Boolean)
}

export function translatePulumiError(error: unknown, target: StackTarget | string, locks?: LockHolder[], diagnostics: readonly string[] = []): unknown {
  if (error instanceof UserError) return error
  if (error instanceof ConcurrentUpdateError) return lockedError(target, error, locks)
  if (error instanceof StackNotFoundError) {
    return noStackError(target, error)
  }
  // Messages name the stack (GROUP.ENV reads as the group in its environment); hints name the verb's arguments.
  const group = stackName(asTarget(target))
  const args = groupArgs(target)
  if (error instanceof CommandError) {
    const message = error.message
    if (/pending operations?/i.test(message) || /interrupted while/i.test(message)) {
      return new UserError(`an earlier update of ${group} was interrupted and left pending operations`, {
        hint: `Check in AWS whether the resources it was creating exist (delete strays), then run: muster up ${args} --clear-pending`,
        cause: error,
      })
    }
    const plugin = /no resource plugin '(pulumi-resource-[a-z0-9-]+)' found in the workspace at version (v[0-9.]+)/.exec(message)
    if (plugin) {
      const name = (plugin[1] as string).replace('pulumi-resource-', '')
      return new UserError(`the Pulumi ${name} provider plugin ${plugin[2]} is not installed`, {
        hint: `Install it once with: pulumi plugin install resource ${name} ${plugin[2]}`,
        cause: error,
      })
    }
    if (/passphrase must be set/i.test(message)) {
      return new UserError(`the stack of ${group} keeps its secrets with a passphrase, and none is set (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE)`, {
        hint: `Set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the passphrase the stack was created with: everyone who uses this backend needs the same one. New stacks can use a cloud secrets provider instead (${SECRETS_PROVIDER_ENV}=awskms://…); see the README's "Where state lives".`,
        cause: error,
      })
    }
    if (/passphrase/i.test(message) && /(incorrect|invalid|PULUMI_CONFIG_PASSPHRASE)/i.test(message)) {
      return new UserError(`Pulumi could not decrypt the stack of ${group}: the passphrase is not the one it was created with`, {
        hint: 'Set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the passphrase the stack was created with.',
        cause: error,
      })
    }
    if (/awskms|gcpkms|azurekeyvault|hashivault/i.test(message) && /secrets (manager|provider)|decrypt|encrypt|KMS/i.test(message)) {
      const line = message.split('\n').find((l) => /error/i.test(l))?.trim() ?? ''
      return new UserError(`the secrets provider of the stack of ${group} failed: ${line}`, {
        hint: `Check that your cloud credentials may use the key the stack names (secretsprovider in its stacks/${stackConfigFileName(target)}) and that the key exists in that region.`,
        cause: error,
      })
    }
    if (diagnostics.length > 0) {
      return new UserError(`Pulumi failed on the stack of ${group}:\n  ${diagnostics.join('\n  ')}`, {hint: 'Run again with --verbose to see the engine output.', cause: error})
    }
    const stderr = /stderr:([\s\S]*?)(\n err\?:|$)/.exec(message)?.[1]?.trim()
    const lines = (stderr ?? message)
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => /error/i.test(l))
      .slice(0, 8)
    return new UserError(`Pulumi failed on the stack of ${group}:\n  ${(lines.length > 0 ? lines : [message.split('\n')[0] ?? '']).join('\n  ')}`, {
      hint: 'Run again with --verbose to see the engine output.',
      cause: error,
    })
  }
  return error
}

/** A locked stack: who holds the lock, whether that holder still runs, and how to clear it. */
export function lockedError(target: StackTarget | string, error: Error, locks: LockHolder[] | undefined): UserError {
  const group = stackName(asTarget(target))
  const args = groupArgs(target)
  const known = locks?.filter((l) => l.pid !== undefined) ?? []
  if (known.length > 0 && known.every((l) => l.state === 'stale')) {
    return new UserError(`the stack of ${group} has a stale lock: held by ${known.map(describeHolder).join('; ')}`, {
      hint: `An earlier update was killed before it could release the lock. Clear it with: muster unlock ${args}`,
      cause: error,
    })
  }
  const holder = known.length > 0 ? known.map(describeHolder).join('; ') : /locked by[^\n]*|lock file[^\n]*|\(pid[^\n]*/.exec(error.message)?.[0]?.trim()
  return new UserError(`the stack of ${group} is locked by another update${holder ? ` (${holder})` : ''}`, {
    hint: `Wait for that update to finish. If no muster or pulumi command is running on it any more, clear the lock with: muster unlock ${args}`,
    cause: error,
  })
}
