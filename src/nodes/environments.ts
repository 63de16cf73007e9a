// Environments: staging before production, in one nodes file. The reserved top-level entry
// `__environments__` names them and what each changes; every verb works on one of them (--env,
// MUSTER_ENV, else the file's default). A file without the entry means exactly what it meant
// before environments existed.
//
// The merge order, from weakest to strongest (README "Environments"):
//   1. __base__
//   2. the group (the paper's rules: lists appended, dicts merged at level 1, scalars replaced)
//   3. the environment's settings for every group (__environments__.ENV)
//   4. the environment's settings for this group (__environments__.ENV.groups.GROUP)
// Steps 3 and 4 *replace* lists instead of appending them: an environment says where its nodes
// run (its subnets, its security groups), and production's security groups appended to staging's
// would open staging to production's rules and the other way round. Dicts (tags, autoscale,
// packer) are merged at level 1 as in step 2.
//
// An environment never changes what makes the role or the image (run list, services, attributes of
// the role, from_base): the role is the same in every environment, as Chef intends, and an image
// baked and tested in staging is the image production runs (packer:promote). The environment's
// Chef attributes go into a real Chef environment, environments/ENV.json, where Chef's own
// precedence puts them above the role's.
import {UserError} from '../errors.js'
import {qualifiedName} from '../lib/tags.js'
import {inherit, isDict, type Plain} from './inherit.js'
import {BASE, type Group, type NodesFile, type RegistrySetting} from './model.js'
import {ENVIRONMENTS} from './schema.js'

export {ENVIRONMENTS}

/** One environment as declared, with every group resolved in it. */
export interface Environment {
  name: string
  /** Whether verbs use it without --env (the one marked default, else the first listed). */
  default: boolean
  /** The Chef environment's own settings. */
  chef: ChefEnvironmentSettings
  /** The environment's registry, when it names one (endpoints; project when it names one). */
  registry?: {endpoints?: string[]; project?: string}
  releaseBucket?: string
  /** Every group (and __base__) as it is in this environment. */
  groups: Map<string, Group>
}

export interface ChefEnvironmentSettings {
  description: string
  default_attributes: Record<string, unknown>
  override_attributes: Record<string, unknown>
  cookbook_versions: Record<string, string>
}

/**
 * Why an environment may not set a key (undefined when it may), naming the way out (each error names the way out). `where` is 'environment'
 * for the environment's own level, 'group' for __environments__.ENV.groups.GROUP.
 */
export function forbiddenEnvironmentKey(key: string, where: 'environment' | 'group'): string | undefined {
  const roleShape = 'it is part of the role, which is the same in every environment (one role, many environments, as Chef intends)'
  switch (key) {
    case 'run_list':
    case 'post_run_list':
      return `${roleShape}; set it on the group, and pin cookbook versions per environment with "cookbook_versions" instead`
    case 'services':
    case 'service_cookbooks':
    case 'depends_on':
      return 'it says what a group runs and calls, which is the same in every environment; set it on the group'
    case 'from_base':
    case 'type':
      return 'it decides how the image is built, which is the same in every environment so that an image tested in one can be promoted to another (muster packer:promote); set it on the group'
    case 'description':
      return where === 'group' ? `${roleShape}; set it on the group (an environment's own "description" describes the Chef environment)` : undefined
    case 'default_attributes':
    case 'override_attributes':
      return where === 'group'
        ? 'an environment\'s attributes go into its Chef environment, which every group shares; set them at the environment\'s level, or on the group for its role'
        : undefined
    case 'registry':
    case 'release_bucket':
      return where === 'group' ? 'it is a setting of the whole environment; set it at the environment\'s level' : undefined
    default:
      return undefined
  }
}

/** Settings of the environment's level that are not group settings (they are not merged into groups). */
const ENVIRONMENT_ONLY = new Set(['default', 'description', 'default_attributes', 'override_attributes', 'cookbook_versions', 'registry', 'release_bucket', 'groups'])

export type OverlayProblem = {key: string; message: string}

/**
 * Steps 3 and 4 of the merge order on plain values: lists and scalars replaced, dicts merged at
 * level 1. autoscale and packer merge into a group's dict only: an environment cannot give a
 * group with autoscale: false an Auto Scaling group, or bake a group with packer: false. At the
 * environment's level such groups are left as they are; for a named group it is an error.
 */
export function overlay(group: Plain, changes: Plain, strict: boolean): {merged: Plain; problems: OverlayProblem[]} {
  const merged: Plain = {...group}
  const problems: OverlayProblem[] = []
  for (const [key, value] of Object.entries(changes)) {
    if (ENVIRONMENT_ONLY.has(key) || value === undefined) continue
    const current = group[key]
    if (key === 'autoscale' || key === 'packer') {
      if (isDict(current) && isDict(value)) merged[key] = {...current, ...value}
      else if (current === false && strict) problems.push({key, message: `the group has ${key}: false, so an environment has nothing to change here; remove this, or give the group ${key === 'autoscale' ? 'an Auto Scaling group' : 'a bake'} in every environment`})
      else if (current === undefined && key === 'packer') merged[key] = {...value}
      else if (current === undefined && strict) problems.push({key, message: 'the group has no autoscale, so an environment has nothing to change here; give the group "autoscale" first'})
      continue
    }
    if (key === 'tags' && isDict(current) && isDict(value)) merged[key] = {...current, ...value}
    else merged[key] = Array.isArray(value) ? [...(value as unknown[])] : value
  }
  return {merged, problems}
}

/** The raw group as merged by steps 1 and 2. */
export function inheritGroup(base: Plain, name: string, own: Plain): Plain {
  return name === BASE ? base : inherit(base, own)
}

/** The environment verbs use when none is given: the one marked default, else the first listed. */
export function defaultEnvironment(nodes: NodesFile): Environment | undefined {
  const all = [...nodes.environments.values()]
  return all.find((e) => e.default) ?? all[0]
}

/**
 * `--env ''` is refused, as `--nodes ''` is: `--env "$TARGET"` with TARGET unset must not quietly
 * work on the default environment (which may be production). An empty MUSTER_ENV means unset.
 */
export function emptyEnvironmentName(): UserError {
  return new UserError('--env was given an empty name', {
    hint: 'Name the environment (--env staging), or leave --env out to use the nodes file\'s default environment; nothing was read or written.',
  })
}

/**
 * The nodes file as seen from one environment: its groups, registry and release bucket. A file
 * without environments is returned as it is (and --env on it is an error).
 */
export function selectEnvironment(nodes: NodesFile, name: string | undefined): NodesFile {
  if (name === '') throw emptyEnvironmentName()
  if (nodes.environments.size === 0) {
    if (name === undefined) return nodes
    throw new UserError(`${nodes.file} declares no environments, so there is no environment "${name}"`, {
      hint: `Leave out --env (and MUSTER_ENV), or declare environments in a "${ENVIRONMENTS}" entry (README "Environments").`,
    })
  }
  const environment = name === undefined ? defaultEnvironment(nodes) : nodes.environments.get(name)
  if (!environment) {
    const names = [...nodes.environments.keys()]
    throw new UserError(`no environment "${name ?? ''}" in ${nodes.file}`, {hint: `Environments: ${names.join(', ')}. Give one of them with --env NAME or MUSTER_ENV.`})
  }
  const selected: NodesFile = {...nodes, groups: environment.groups, environment: environment.name}
  const registry = environmentRegistry(nodes.registry, environment)
  if (registry) selected.registry = registry
  else delete selected.registry
  const bucket = environment.releaseBucket ?? nodes.releaseBucket
  if (bucket !== undefined) selected.releaseBucket = bucket
  if (nodes.registry?.project !== undefined) selected.fleetProject = nodes.registry.project
  return selected
}

/**
 * The registry an environment's agents use: its own endpoints or __base__'s. Its project is the
 * one the environment names, else __base__'s with ".ENV" appended, else undefined, and then the
 * caller appends ".ENV" to the Pulumi project's name (registryProject). Environments never share
 * a project, so they never see each other's services, and their etcd roles (registry:init) never
 * reach each other's keys.
 */
function environmentRegistry(base: RegistrySetting | undefined, environment: Environment): RegistrySetting | undefined {
  const endpoints = environment.registry?.endpoints ?? base?.endpoints
  if (endpoints === undefined) return undefined
  const project = environment.registry?.project ?? (base?.project === undefined ? undefined : `${base.project}.${environment.name}`)
  return {endpoints: [...endpoints], ...(project === undefined ? {} : {project})}
}

/**
 * The registry project of the nodes file as selected: what it names, else `fallback` (the Pulumi
 * project, --project or MUSTER_PROJECT) with ".ENV" appended in an environment.
 */
export function registryProject(nodes: Pick<NodesFile, 'registry' | 'environment'>, fallback: string): string {
  if (nodes.registry?.project !== undefined) return nodes.registry.project
  return nodes.environment === undefined ? fallback : `${fallback}.${nodes.environment}`
}

/**
 * The project a fleet's releases are filed under in the release bucket and named in their
 * manifests (muster/PROJECT/releases/…): the registry project without environments; with them,
 * __base__.registry.project, else `fallback` — the same for every environment. That is what lets
 * production roll out the very release staging ran: its bytes, so its digest, name no environment.
 */
export function releaseProject(nodes: Pick<NodesFile, 'registry' | 'environment' | 'fleetProject'>, fallback: string): string {
  if (nodes.environment === undefined) return registryProject(nodes, fallback)
  return nodes.fleetProject ?? fallback
}

/** The stack of a group in the selected environment: GROUP, or GROUP.ENV (Pulumi and its dashboard show it as it is). */
export function stackName(group: Pick<Group, 'name' | 'environment'>): string {
  return qualifiedName(group.name, group.environment)
}
