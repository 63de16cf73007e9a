// One session per verb run: the backend is chosen once, the engine's environment built once, and
// each group's stack opened once through it. The engine runs muster's command resources with the
// Node dynamic-provider host: muster puts its own launcher (bin/pulumi-resource-pulumi-nodejs)
// first on PATH and points it at its own copy of the SDK, so a Pulumi CLI built without the
// launcher still works, the versions match, and the host is the process the engine stops.
import {createRequire} from 'node:module'
import {delimiter, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {type Backend, chooseBackend} from './backend.js'
import {isolateProgramErrors} from './isolation.js'
import {type Part, PART_COMPONENTS} from './program.js'
import {type GroupStack, listProjectStacks, noStackError, openGroupStack, type StackTarget} from './workspace.js'

const BIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin')
const MUSTER_BIN = join(BIN_DIR, 'run.js')
const requireHere = createRequire(import.meta.url)
const DYNAMIC_PROVIDER = requireHere.resolve('@pulumi/pulumi/cmd/dynamic-provider/index.js')
const SDK_DIR = dirname(requireHere.resolve('@pulumi/pulumi/package.json'))
const NODE_MODULES = dirname(dirname(SDK_DIR))

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
    PATH: [BIN_DIR, extra.PATH ?? process.env.PATH ?? ''].filter(Boolean).join(delimiter),
    NODE_PATH: [NODE_MODULES, extra.NODE_PATH ?? process.env.NODE_PATH ?? ''].filter(Boolean).join(delimiter),
  }
}

/** The engine targets of some parts of a stack; undefined (every resource) for no parts. */
export function targetsFor(stack: GroupStack, parts: readonly Part[] | undefined): string[] | undefined {
  if (!parts) return undefined
  return parts.flatMap((part) => stack.componentTargets(PART_COMPONENTS[part].type, PART_COMPONENTS[part].name))
}

export class StackSession {
  private constructor(
    readonly root: string,
    readonly backend: Backend,
    private readonly env: Record<string, string>,
  ) {}

  /** Chooses the backend (creating the embedded one on first use) and the engine environment. */
  static start(root: string, extraEnv: Record<string, string> = {}): StackSession {
    isolateProgramErrors()
    const backend = chooseBackend(root, {...process.env, ...extraEnv})
    return new StackSession(root, backend, engineEnv(root, backend, extraEnv))
  }

  /** Opens a group's stack (GROUP, or GROUP.ENV for a group resolved in an environment), creating it when it has none. */
  async openOrCreate(group: StackTarget | string): Promise<GroupStack> {
    return (await openGroupStack(this.context(), group, {create: true})) as GroupStack
  }

  /** Opens a group's existing stack; undefined when the group has none. */
  async openExisting(group: StackTarget | string): Promise<GroupStack | undefined> {
    return openGroupStack(this.context(), group, {create: false})
  }

  /** Opens a group's existing stack; a user error when the group has none. */
  async require(group: StackTarget | string): Promise<GroupStack> {
    const stack = await this.openExisting(group)
    if (!stack) throw noStackError(group)
    return stack
  }

  /** The names of the project's stacks in the backend, sorted. */
  async stackNames(): Promise<string[]> {
    return listProjectStacks(this.context())
  }

  private context(): {root: string; backend: Backend; env: Record<string, string>} {
    return {root: this.root, backend: this.backend, env: this.env}
  }
}
