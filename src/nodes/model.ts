// The resolved model: what a group is after inheritance from __base__ and defaults.
import {UserError} from '../errors.js'
import type {Environment} from './environments.js'
import {type AutoscaleSpec, type ServiceSpec, sizesInOrder} from './schema.js'

export const BASE = '__base__'

export interface Group {
  name: string
  description: string
  autoscale: false | AutoscaleSpec
  type: 'amazon-ebs'
  region: string
  instance_type: string
  /** Absent only when the group builds from the newest base image. */
  source_ami?: string
  from_base: boolean
  ssh_username: string
  security_groups: string[]
  subnets: string[]
  tags: Record<string, string>
  volume_size?: number
  default_attributes: Record<string, unknown>
  override_attributes: Record<string, unknown>
  run_list: string[]
  post_run_list: string[]
  /** false: never baked; otherwise extra options for the Packer source block. */
  packer: false | Record<string, unknown>
  services: Record<string, ServiceSpec>
  /** Cookbooks whose recipes are services besides those named `*-service` (merged, each once). */
  service_cookbooks: string[]
  /** Services the group calls without running them (merged, each once); see nodes/services.ts. */
  depends_on: string[]
  /** The environment this group is resolved in; absent in a file without environments. */
  environment?: string
}

export interface NodesFile {
  /** Path of the nodes file as given or found. */
  file: string
  /** Every group in file order, __base__ included when present. */
  groups: Map<string, Group>
  /** __base__.release_bucket: where instance:deploy uploads releases (a fleet-wide setting). */
  releaseBucket?: string
  /** __base__.registry: the etcd the agents on the nodes use (a fleet-wide setting). */
  registry?: RegistrySetting
  /** The environments the file declares, in file order (empty: none; see nodes/environments.ts). */
  environments: Map<string, Environment>
  /** The environment the groups above are resolved in (selectEnvironment); absent without environments. */
  environment?: string
  /** With an environment selected: __base__.registry.project, which `registry` no longer holds (see releaseProject). */
  fleetProject?: string
}

export interface RegistrySetting {
  endpoints: string[]
  /** The registry project; the Pulumi project's name when absent. */
  project?: string
}

/** Groups named on the command line, or every group but __base__. */
export function selectGroups(nodes: NodesFile, name: string | undefined, filter: (g: Group) => boolean = () => true): Group[] {
  if (name !== undefined) {
    const group = nodes.groups.get(name)
    if (!group) return []
    return [group]
  }
  return nodeGroups(nodes).filter(filter)
}

export function requireGroup(nodes: NodesFile, name: string): Group {
  const group = nodes.groups.get(name)
  if (!group) {
    const names = [...nodes.groups.keys()]
    throw new UserError(`no group "${name}" in ${nodes.file}`, {hint: `Groups: ${names.join(', ')}. Run "muster ls" to list them.`})
  }
  return group
}

/**
 * The one rule for __base__ on the command line: it passes its settings on and is not a node group,
 * so only the verbs that work on its image (packer:create, packer:run, packer:clean, packer:retain,
 * packer:ami, packer:delete) and show take it. Every other verb names a group through this.
 * `what` is what __base__ lacks ("role", "Auto Scaling group"); `done` what did not happen.
 */
export function requireNodeGroup(nodes: NodesFile, name: string, what: string, done = 'nothing was written'): Group {
  refuseBase(name, what, done)
  return requireGroup(nodes, name)
}

/** requireNodeGroup's refusal alone, for a group already looked up. */
export function refuseBase(name: string, what: string, done = 'nothing was written'): void {
  if (name === BASE) {
    throw new UserError(`${BASE} is not a node group, so it has no ${what} of its own; ${done}`, {
      hint: `Every group inherits ${BASE}'s settings: name a group instead (muster ls lists them), or leave GROUP out for all of them. To bake the base image, run: muster packer:create ${BASE}`,
    })
  }
}

/** The groups that have images: those baked, and the base image when some group builds from it. */
export function bakedGroups(nodes: NodesFile): Group[] {
  const baked = nodeGroups(nodes).filter(isBaked)
  const base = nodes.groups.get(BASE)
  return base && baked.some((g) => g.from_base) ? [base, ...baked] : baked
}

/** The autoscale spec of a group that has one, or a UserError saying how to give it one. */
export function requireAutoscale(group: Group): AutoscaleSpec {
  if (group.autoscale === false) {
    throw new UserError(`group ${group.name} has autoscale: false, so it has no Auto Scaling group`, {
      hint: `Give it "autoscale": {"timeout": 120, "node_min": 1, "node_max": 2} in the nodes file, or run one-off nodes with "muster instance:create ${group.name} --name NAME".`,
    })
  }
  const spec = group.autoscale
  if (!sizesInOrder(spec)) {
    throw new UserError(`group ${group.name} has autoscale.node_min ${spec.node_min} above node_max ${spec.node_max}`, {
      hint: 'Make node_min at most node_max in the nodes file.',
    })
  }
  return spec
}

/** A group that runs nodes: every group but __base__, which passes its settings on (and may be baked as the base image). */
export function isNodeGroup(group: Group): boolean {
  return group.name !== BASE
}

/** Every group but __base__, in file order. */
export function nodeGroups(nodes: NodesFile): Group[] {
  return [...nodes.groups.values()].filter(isNodeGroup)
}

export const isBaked = (group: Group): boolean => group.packer !== false
export const isAutoscaled = (group: Group): boolean => group.autoscale !== false

/** The groups a verb that works on images means without a GROUP: the baked node groups (bakedGroups adds __base__). */
export function bakedNodeGroups(nodes: NodesFile): Group[] {
  return bakedGroups(nodes).filter(isNodeGroup)
}

/** A UserError for a verb that bakes, named on a group with packer: false. */
export function requirePacker(group: Group): void {
  if (!isBaked(group)) {
    throw new UserError(`group ${group.name} has packer: false, so it is never baked`, {hint: 'It boots from source_ami; remove "packer": false (or set it to a dict of source options) to bake it.'})
  }
}
