// muster status: the view an operator opens first. Per group, what runs: the newest AMI and how
// many the group keeps (stack outputs, EC2 images by the group tag), its Auto Scaling groups'
// desired and in-service counts (stack outputs, Auto Scaling), the nodes registered and healthy,
// the current release and the last deploy's result (the registry, when one is given); then the
// orphan stacks. Reads only. Each source answers for itself: one that fails (or a registry that
// is not given) leaves its columns unknown with the reason, and the rest is still shown.
import {readProjectName} from '../artifacts/project-name.js'
import {findGroupAsgs, type GroupAsg, ofEnvironment} from '../aws/asg.js'
import {createImageStore, type GroupImage} from '../aws/ec2.js'
import {mapBounded} from '../lib/parallel.js'
import {ownershipOf} from '../lib/tags.js'
import {stackName} from '../nodes/environments.js'
import {type Group, nodeGroups} from '../nodes/model.js'
import {deployProgress, type NodeOutcome, parseDeployKey, parseReleaseRef, groupReleaseKey} from '../registry/deploys.js'
import type {RegistryTarget} from '../registry/connect-options.js'
import type {Snapshot} from '../registry/store.js'
import {RegistryView} from '../registry/view.js'
import {DeployKeys} from './deploy-follow.js'
import type {IoHost} from './io.js'
import {Project, type ProjectOptions} from './project.js'
import {orphanStacks} from './stack.js'

/** A part that could not be read: its reason instead of its value. */
export interface Unknown {
  unknown: string
}

export interface AsgStatus {
  name: string
  desired: number
  inService: number
  /** Whether the group's stack manages it (its asgNames output); false: tagged for the group, made elsewhere. */
  managed: boolean
}

export interface DeployResult {
  id: string
  requestedAt: string
  done: boolean
  ok: boolean
  stopped: string | null
  counts: Record<NodeOutcome, number>
}

export interface RegistryStatus {
  /** Live nodes of the group (nodes/NODE on a lease). */
  registered: number
  /** Of those, the ones whose last provision succeeded. */
  healthy: number
  /** groups/GROUP/release: the digest of the group's current release, or null when it has none. */
  release: string | null
  /** The newest deploy that included the group, or null. */
  lastDeploy: DeployResult | null
}

export interface GroupStatus {
  group: string
  region: string
  /** Whether the group has a stack in the backend. */
  stack: boolean
  /** Why the stack could not be read (outputs, intent), or null. */
  stackProblem: string | null
  /** The AMI the stack last baked (its ami output), or null. */
  stackAmi: string | null
  /**
   * The project's own images of the group (muster:project): the newest, how many, and how many
   * retention keeps; `legacy` counts images with the group tag alone (packer:adopt makes them ours).
   */
  images: {newest: {id: string; created: string} | null; count: number; keep: number | null; legacy: number} | Unknown
  asgs: AsgStatus[] | Unknown
  registry: RegistryStatus | Unknown
}

export interface StatusResult {
  backend: string
  /** The registry project and endpoints read, or null when none was given. */
  registry: {project: string; endpoints: string[]} | null
  groups: GroupStatus[]
  orphans: string[]
  /** Why the orphans could not be listed (the backend did not answer), or null. */
  orphansUnknown: string | null
  nodesFile: string
  /** The environment the status is of (stacks GROUP.ENV); absent without environments. */
  environment?: string
}

export interface StatusOptions extends ProjectOptions {
  group?: string | undefined
  /** The registry to read; undefined: none given, so its columns are unknown. */
  registry?: RegistryTarget | undefined
}

/** The outside world, replaceable in unit tests; the defaults are the real AWS SDK and etcd. */
export interface StatusDeps {
  images?: (region: string, group: string) => Promise<GroupImage[]>
  asgs?: (region: string, group: string) => Promise<GroupAsg[]>
  registry?: (target: RegistryTarget) => Promise<Snapshot>
  now?: () => Date
}

export const NO_REGISTRY = 'no registry given (--etcd or MUSTER_ETCD_ENDPOINTS)'

const reason = (error: unknown): Unknown => ({unknown: error instanceof Error ? error.message.split('\n')[0] ?? error.message : String(error)})

async function settle<T>(read: () => Promise<T>): Promise<T | Unknown> {
  try {
    return await read()
  } catch (error) {
    return reason(error)
  }
}

export async function status(options: StatusOptions, io: Pick<IoHost, 'progress'>, deps: StatusDeps = {}): Promise<StatusResult> {
  const project = new Project(options, io)
  const named = options.group !== undefined
  const session = project.session()
  const listed = await settle(() => orphanStacks(project))
  const orphans = 'unknown' in listed ? [] : listed
  // A named group that is gone from the nodes file but has a stack is shown as an orphan only.
  const namedStack = named ? stackName({name: options.group as string, environment: project.nodes.environment}) : ''
  const groups: Group[] = named ? (orphans.includes(namedStack) ? [] : [project.group(options.group as string, {what: 'status', done: 'nothing was read'})]) : nodeGroups(project.nodes)
  const snapshot = options.registry ? await settle(() => (deps.registry ?? defaultRegistry)(options.registry as RegistryTarget)) : {unknown: NO_REGISTRY}
  const now = (deps.now ?? (() => new Date()))()
  const listImages = deps.images ?? defaultImages
  const listAsgs = deps.asgs ?? findGroupAsgs
  const owner = {project: readProjectName(project.root), environment: project.nodes.environment}
  const rows = await mapBounded(groups, project.parallel, async (group): Promise<GroupStatus> => {
    io.progress(`[${group.name}] reading…`)
    const opened = await settle(() => session.openExisting(group))
    const stack = opened === undefined || 'unknown' in opened ? undefined : opened
    const outputs = stack ? await settle(() => stack.outputs()) : {}
    const intent = stack ? await settle(() => stack.intent()) : undefined
    const out = 'unknown' in outputs ? {} : outputs
    const managed = Array.isArray(out.asgNames) ? out.asgNames.filter((n): n is string => typeof n === 'string') : []
    const [images, asgs] = await Promise.all([
      group.packer === false
        ? Promise.resolve({newest: null, count: 0, keep: null, legacy: 0})
        : settle(async () => {
            const found = await listImages(group.region, group.name)
            // Another project's images of a group of the same name are not this group's.
            const ours = found.filter((image) => ownershipOf(image.tags, owner) === 'ours')
            const legacy = found.filter((image) => ownershipOf(image.tags, owner) === 'legacy').length
            const newest = [...ours].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0))[0]
            return {newest: newest ? {id: newest.id, created: newest.created} : null, count: ours.length, keep: intent && !('unknown' in intent) && intent.bake ? intent.keep : null, legacy}
          }),
      settle(async () => {
        // Another environment's ASGs of the group are that environment's to show.
        const found = ofEnvironment(await listAsgs(group.region, group.name), group.environment)
        return found.map((a) => ({name: a.name, desired: a.desired, inService: a.inService, managed: managed.includes(a.name)}))
      }),
    ])
    return {
      group: group.name,
      region: group.region,
      stack: stack !== undefined,
      stackProblem: [opened, outputs, intent].find((part): part is Unknown => part !== undefined && 'unknown' in part)?.unknown ?? null,
      stackAmi: typeof out.ami === 'string' && out.ami !== '' ? out.ami : null,
      images,
      asgs,
      registry: 'unknown' in snapshot ? snapshot : groupRegistryStatus(options.registry?.project as string, snapshot, group.name, now),
    }
  })
  return {
    backend: session.backend.describe,
    registry: options.registry ? {project: options.registry.project, endpoints: options.registry.endpoints} : null,
    groups: rows,
    orphans: named ? orphans.filter((o) => o === namedStack) : orphans,
    orphansUnknown: 'unknown' in listed ? listed.unknown : null,
    ...(project.nodes.environment === undefined ? {} : {environment: project.nodes.environment}),
    nodesFile: project.nodes.file,
  }
}

/**
 * One group's picture in the registry, from one snapshot of the project's keys: its live nodes
 * (healthy: last provision ok), its current release, and the newest deploy that included it.
 * Every value was written by some node: RegistryView and the deploy parsers check each one.
 */
export function groupRegistryStatus(project: string, snapshot: Snapshot, group: string, now: Date): RegistryStatus {
  const view = new RegistryView(project)
  view.apply(snapshot.events, snapshot.revision)
  const nodes = [...view.nodes.values()].filter((n) => n.group === group)
  const releaseKey = groupReleaseKey(project, group)
  const releaseEvent = snapshot.events.find((e) => e.key === releaseKey && e.type === 'put')
  const release = releaseEvent ? (parseReleaseRef(releaseEvent.value)?.digest ?? null) : null
  // Deploy ids sort by time: the newest whose request names the group.
  const ids = [...new Set(snapshot.events.flatMap((e) => {
    const parsed = parseDeployKey(project, e.key)
    return parsed?.kind === 'request' ? [parsed.id] : []
  }))].sort().reverse()
  let lastDeploy: DeployResult | null = null
  for (const id of ids) {
    const keys = new DeployKeys(project, id)
    keys.apply(snapshot.events, snapshot.revision)
    const state = keys.state()
    if (!state || !state.request.groups.includes(group)) continue
    const progress = deployProgress(state, now)
    lastDeploy = {id, requestedAt: state.request.requestedAt, done: progress.done, ok: progress.ok, stopped: state.stop?.reason ?? null, counts: progress.counts}
    break
  }
  return {registered: nodes.length, healthy: nodes.filter((n) => n.provision.ok === true && n.provision.state !== 'failed').length, release, lastDeploy}
}

async function defaultImages(region: string, group: string): Promise<GroupImage[]> {
  const store = createImageStore({region})
  try {
    return await store.listGroupImages(group)
  } finally {
    store.close()
  }
}

async function defaultRegistry(target: RegistryTarget): Promise<Snapshot> {
  const {readProjectKeys} = await import('../registry/read.js')
  return readProjectKeys(target)
}
