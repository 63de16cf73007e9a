// What every verb starts from: the nodes file, loaded once, and the stack session, opened only
// when a verb gets past its own refusals (so a refused verb leaves no .muster/ behind).
import {cpus} from 'node:os'

import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {type Group, nodeGroups, type NodesFile, requireGroup, requireNodeGroup} from '../nodes/model.js'
import {StackSession} from '../stacks/session.js'
import type {IoHost} from './io.js'

/** The options every verb takes besides its own. */
export interface ProjectOptions {
  cwd: string
  nodesPath?: string | undefined
  /** How many groups at once (default: the number of cores). */
  parallel?: number | undefined
  /** Extra variables for the engine and the commands it runs. */
  env?: Record<string, string>
}

export const defaultParallel = (): number => Math.max(1, cpus().length)

export class Project {
  readonly root: string
  readonly nodes: NodesFile
  readonly parallel: number
  private opened: StackSession | undefined

  constructor(
    private readonly options: ProjectOptions,
    private readonly io: Pick<IoHost, 'progress'>,
  ) {
    this.root = options.cwd
    this.nodes = loadNodes({cwd: options.cwd, path: options.nodesPath})
    this.parallel = options.parallel ?? defaultParallel()
  }

  /** The stack session, started on first use; the first run says where the embedded state lives. */
  session(): StackSession {
    if (!this.opened) {
      this.opened = StackSession.start(this.root, this.options.env)
      const backend = this.opened.backend
      if (backend.created) this.io.progress(`State lives in ${backend.describe}; it is git-ignored. Set PULUMI_BACKEND_URL or Pulumi.yaml backend.url to share it.`)
    }
    return this.opened
  }

  /** The named group; `notBase` (what __base__ lacks, for every verb but the image verbs) refuses __base__. */
  group(name: string, notBase?: {what: string; done: string}): Group {
    return notBase ? requireNodeGroup(this.nodes, name, notBase.what, notBase.done) : requireGroup(this.nodes, name)
  }

  /**
   * The groups a verb acts on: the named ones (each refused by `check` when it does not apply),
   * or every node group `applies` accepts.
   */
  select(names: readonly string[] | undefined, applies: (g: Group) => boolean = () => true, check?: (g: Group) => void, notBase?: {what: string; done: string}): Group[] {
    if (names && names.length > 0) {
      return names.map((name) => {
        const group = this.group(name, notBase)
        check?.(group)
        return group
      })
    }
    const groups = nodeGroups(this.nodes).filter(applies)
    if (groups.length === 0) throw new UserError('no group to act on', {hint: 'Name a group, or check the nodes file (muster ls).'})
    return groups
  }
}
