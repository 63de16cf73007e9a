// What every verb starts from: the nodes file, loaded once, and the stack session, opened only
// when a verb gets past its own refusals (so a refused verb leaves no .muster/ behind).
import {cpus} from 'node:os'

import {readProjectName} from '../artifacts/project-name.js'
import {createImageStore, type ImageStore} from '../aws/ec2.js'
import {newestOwnImage} from '../aws/retention.js'
import {UserError} from '../errors.js'
import type {ImageOwner} from '../lib/tags.js'
import {loadNodes} from '../nodes/load.js'
import {BASE, type Group, isBaked, nodeGroups, type NodesFile, requireGroup, requireNodeGroup} from '../nodes/model.js'
import type {ContextInputs} from '../stacks/context.js'
import {StackSession} from '../stacks/session.js'
import type {IoHost} from './io.js'

/** The options every verb takes besides its own. */
export interface ProjectOptions {
  cwd: string
  nodesPath?: string | undefined
  /** --env or MUSTER_ENV; the nodes file's default environment when absent. */
  environment?: string | undefined
  /** How many groups at once (default: the number of cores). */
  parallel?: number | undefined
  /** Extra variables for the engine and the commands it runs. */
  env?: Record<string, string>
  /** Where the base image is looked up; tests may pass their own. Default: the AWS SDK store of the region. */
  openStore?: (region: string) => ImageStore & {close(): void}
}

/** A from_base group: it bakes from the newest __base__ image of the project. */
export const buildsFromBase = (group: Group): boolean => group.from_base && isBaked(group)

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
    this.nodes = loadNodes({cwd: options.cwd, path: options.nodesPath, environment: options.environment})
    this.parallel = options.parallel ?? defaultParallel()
  }

  /** Whose images this run's are: the Pulumi project, and the environment it is seen from. */
  owner(): ImageOwner {
    return {project: readProjectName(this.root), environment: this.nodes.environment}
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

  /** Region → the id of the project's newest __base__ image there, asked once per run (see forgetBaseImages). */
  private readonly baseImages = new Map<string, Promise<string>>()

  /**
   * What a group's program needs beyond the nodes file: for a from_base group, the base image it
   * builds from (a bake trigger, so a new base image makes the group stale).
   */
  async contextInputs(group: Group): Promise<ContextInputs> {
    if (!buildsFromBase(group)) return {}
    let image = this.baseImages.get(group.region)
    if (!image) {
      image = this.lookUpBaseImage(group.region)
      this.baseImages.set(group.region, image)
      // A failed look-up is asked again next time, not remembered.
      image.catch(() => this.baseImages.delete(group.region))
    }
    return {baseImage: await image}
  }

  /** After __base__ was baked in this run: look its newest image up again. */
  forgetBaseImages(): void {
    this.baseImages.clear()
  }

  private async lookUpBaseImage(region: string): Promise<string> {
    const store = (this.options.openStore ?? ((r: string) => createImageStore({region: r})))(region)
    try {
      return await newestOwnImage(store, BASE, this.owner())
    } finally {
      store.close()
    }
  }

  /**
   * The groups of a run with no GROUP named, with __base__ first when one of them builds from it
   * (the base must be baked before the groups built from it); named groups as given, __base__ first.
   */
  withBaseFirst(groups: readonly Group[], named: boolean): Group[] {
    const base = groups.filter((g) => g.name === BASE)
    const rest = groups.filter((g) => g.name !== BASE)
    if (!named && base.length === 0 && rest.some(buildsFromBase) && this.nodes.groups.has(BASE)) base.push(this.group(BASE))
    return [...base, ...rest]
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
