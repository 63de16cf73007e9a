// Turns a parsed nodes document into the resolved model, or into every problem it has, each with
// its file:line:column, key path and what was expected.
import type {z} from 'zod'

import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Diagnostic} from '../errors.js'
import {TAG_COOKBOOKS_HASH, TAG_ENVIRONMENT, TAG_GENERATION, TAG_GROUP, TAG_GROUP_PLAIN, TAG_PROJECT, TAG_TEMPLATE_HASH} from '../lib/tags.js'
import {endpointProblem} from '../registry/endpoint.js'
import {unknownDependencies} from './dependencies.js'
import {type Environment, ENVIRONMENTS, forbiddenEnvironmentKey, overlay} from './environments.js'
import {inherit, isDict, uniqueRunList, type Plain} from './inherit.js'
import {BASE, type Group, type NodesFile} from './model.js'
import {ENVIRONMENT_NAME, GROUP_NAME, MAX_GROUP_NAME, type RawEnvironment, type RawGroup, schemas, sizesInOrder} from './schema.js'
import type {KeyPath, SourceDocument} from './source.js'

/**
 * Packer source options muster sets itself and promises things about (the region and image a group
 * builds from, how images are named, tagged, shared and kept so retention and from_base find them,
 * IMDSv2): a group's packer dict may not set them. Each names what to use instead.
 */
const PRIVATE_IMAGES = 'muster keeps its images private to the account and in the group\'s region; share or copy them outside muster'
export const MUSTER_OWNED_PACKER_OPTIONS: Readonly<Record<string, string>> = {
  region: 'set the group\'s "region" instead',
  source_ami: 'set the group\'s "source_ami" instead',
  source_ami_filter: 'set the group\'s "source_ami", or "from_base": true to build from the newest base image',
  instance_type: 'set the group\'s "instance_type" instead',
  ssh_username: 'set the group\'s "ssh_username" instead',
  ami_name: 'muster names images "GROUP TIMESTAMP" so retention can find them; remove it (the group name is the image name)',
  ami_description: 'set the group\'s "description" instead',
  tags: 'set the group\'s "tags" instead',
  tag: 'set the group\'s "tags" instead',
  run_tags: 'set the group\'s "tags" instead',
  run_tag: 'set the group\'s "tags" instead',
  run_volume_tags: 'set the group\'s "tags" instead',
  run_volume_tag: 'set the group\'s "tags" instead',
  snapshot_tags: 'set the group\'s "tags" instead',
  snapshot_tag: 'set the group\'s "tags" instead',
  spot_tags: 'set the group\'s "tags" instead',
  spot_tag: 'set the group\'s "tags" instead',
  metadata_options: 'muster requires IMDSv2 on the bake instance and its images; remove it',
  imds_support: 'muster requires IMDSv2 on the bake instance and its images; remove it',
  launch_block_device_mappings: 'set the group\'s "volume_size" instead',
  ami_block_device_mappings: 'set the group\'s "volume_size" instead',
  ami_regions: PRIVATE_IMAGES,
  region_kms_key_ids: PRIVATE_IMAGES,
  ami_users: PRIVATE_IMAGES,
  ami_groups: PRIVATE_IMAGES,
  ami_org_arns: PRIVATE_IMAGES,
  ami_ou_arns: PRIVATE_IMAGES,
  snapshot_users: PRIVATE_IMAGES,
  snapshot_groups: PRIVATE_IMAGES,
  skip_create_ami: 'muster bakes to make an image; set "packer": false for a group that is never baked',
  force_deregister: 'muster retires old images itself ("muster packer:clean"); remove it',
  force_delete_snapshot: 'muster retires old images itself ("muster packer:clean"); remove it',
  deprecate_at: 'muster retires old images itself ("muster packer:clean"); remove it',
}

/**
 * The amazon-ebs source options a group may set in its packer dict (an allowlist: anything else is
 * refused). Where the bake instance runs and how Packer reaches it, never what the image is called,
 * how it is tagged or who may use it. `ssh_*`, `winrm_*` and `temporary_key_pair_*` options are
 * allowed by prefix (ssh_username excepted, see above). The AWS connection options (endpoint,
 * keys, polling) are there for test doubles such as moto.
 */
export const ALLOWED_PACKER_OPTIONS: ReadonlySet<string> = new Set([
  'vpc_id', 'subnet_id', 'subnet_filter', 'vpc_filter', 'security_group_id', 'security_group_ids', 'security_group_filter',
  'temporary_security_group_source_cidrs', 'temporary_security_group_source_public_ip',
  'associate_public_ip_address', 'availability_zone', 'placement', 'tenancy',
  'communicator', 'pause_before_connecting',
  'iam_instance_profile', 'spot_price', 'spot_instance_types', 'ebs_optimized', 'ena_support', 'sriov_support',
  'encrypt_boot', 'kms_key_id', 'shutdown_behavior', 'user_data', 'user_data_file',
  'custom_endpoint_ec2', 'access_key', 'secret_key', 'profile', 'skip_credential_validation', 'skip_region_validation',
  'skip_metadata_api_check', 'skip_ami_run_tags', 'aws_polling',
])
const ALLOWED_PACKER_PREFIX = /^(ssh_|winrm_|temporary_key_pair_)/

/** Why a packer option is refused, or undefined when a group may set it. */
export function packerOptionProblem(key: string): string | undefined {
  const instead = MUSTER_OWNED_PACKER_OPTIONS[key]
  if (instead !== undefined) return `packer option "${key}" is set by muster; ${instead}`
  if (ALLOWED_PACKER_OPTIONS.has(key) || ALLOWED_PACKER_PREFIX.test(key)) return undefined
  const guess = didYouMean(key, [...ALLOWED_PACKER_OPTIONS])
  return `packer option "${key}" is not one muster lets a group set${guess ? `; did you mean "${guess}"?` : ''} (see "packer" in the README for the options allowed)`
}

/**
 * Packer renders some strings of a template (tags, descriptions, user data, …) as Go templates:
 * `{{ pwd }}`, `{{ env "HOME" }}`, `{{ vault … }}` run at bake time, and there is no escape that
 * every field honours. Text from the nodes file that reaches a template may not contain `{{`.
 */
const GO_TEMPLATE = '{{'
const GO_TEMPLATE_MESSAGE = 'contains "{{", which Packer would evaluate as a Go template at bake time; remove it (muster writes text into Packer templates literally)'

/** AWS: at most 50 tags on a resource; keys starting with aws: are reserved; an AMI description is at most 255 characters. */
export const MAX_TAGS = 50
export const MAX_DESCRIPTION = 255
/** Tags muster adds itself to AMIs, ASGs, launch templates and instances (they count towards MAX_TAGS). */
const OWN_TAG_KEYS = ['Name', TAG_GROUP_PLAIN, TAG_GROUP, TAG_PROJECT, TAG_TEMPLATE_HASH, TAG_COOKBOOKS_HASH, TAG_GENERATION]

type CompiledValidator = (value: unknown) => boolean
let compiled: CompiledValidator | null | undefined

/** dist/nodes/fast-validate.cjs, built by scripts/build-validator.mjs; absent when run from src/. */
export function fastValidator(): CompiledValidator | undefined {
  if (compiled === undefined) {
    const path = join(dirname(fileURLToPath(import.meta.url)), 'fast-validate.cjs')
    compiled = existsSync(path) ? (createRequire(import.meta.url)(path) as CompiledValidator) : null
  }
  return compiled ?? undefined
}

function autoscaleBoundsHold(group: unknown): boolean {
  const autoscale = isDict(group) ? group.autoscale : undefined
  // Only called on what the compiled validator accepted: node_min and node_max are whole numbers.
  return !isDict(autoscale) || sizesInOrder(autoscale as {node_min: number; node_max: number})
}

export type ValidationResult = {ok: true; nodes: NodesFile} | {ok: false; diagnostics: Diagnostic[]}

export function validateNodes(doc: SourceDocument): ValidationResult {
  if (doc.problems.length > 0) return {ok: false, diagnostics: doc.problems}
  const diagnostics: Diagnostic[] = []
  const report = (path: KeyPath, message: string, at: 'key' | 'value' = 'value'): void => {
    let position = at === 'key' ? doc.locateKey(path) : doc.locateValue(path)
    // A missing key has no place of its own: name the dict it is missing from.
    for (let up = path.length - 1; position === undefined && up >= 0; up--) position = doc.locateKey(path.slice(0, up))
    diagnostics.push({file: doc.file, path, message, position})
  }

  if (!isDict(doc.value)) {
    const empty = doc.value === null && doc.locateValue([]) === undefined
    diagnostics.push({
      file: doc.file,
      path: [],
      message: `expected a dict of node groups (e.g. {"__base__": {…}, "web": {…}}), got ${empty ? 'an empty file' : describe(doc.value)}`,
      position: doc.locateValue([]) ?? {line: 1, column: 1},
    })
    return {ok: false, diagnostics}
  }
  const raw = new Map<string, RawGroup>()
  const declared = (doc.value as Plain)[ENVIRONMENTS]
  const entries = Object.entries(doc.value).filter(([name]) => name !== ENVIRONMENTS)
  // Fast path: the compiled validator accepts the file (and the one rule JSON Schema cannot say
  // holds), so zod is never loaded. Anything it rejects goes through zod for the explanation.
  const fast = fastValidator()
  const fastOk = fast !== undefined && entries.length > 0 && fast(doc.value) && entries.every(([, g]) => autoscaleBoundsHold(g))
  if (fastOk) {
    for (const [name, value] of entries) raw.set(name, value as RawGroup)
  }
  for (const [name, value] of raw.size > 0 ? [] : entries) {
    if (!GROUP_NAME.test(name)) {
      const tooLong = name.length > MAX_GROUP_NAME && /^[A-Za-z0-9_-]+$/.test(name)
      report(
        [name],
        tooLong
          ? `group names may be at most ${MAX_GROUP_NAME} characters, got ${name.length} (they become file, Pulumi stack, Auto Scaling group and AMI names); shorten it`
          : 'group names may only use letters, digits, "_" and "-" (they become Chef role and Pulumi stack names)',
        'key',
      )
      continue
    }
    const parsed = schemas().groupSchema.safeParse(value)
    if (parsed.success) raw.set(name, parsed.data)
    else for (const issue of parsed.error.issues) mapIssue(issue, [name], value, report)
  }
  if (entries.length === 0) report([], 'the nodes file defines no groups; add at least one group')
  const rawEnvironments = declared === undefined ? new Map<string, RawEnvironment>() : parseEnvironments(declared, fastOk, raw, report)
  for (const [name, group] of raw) {
    if (!isDict(group.packer)) continue
    for (const key of Object.keys(group.packer)) {
      const problem = packerOptionProblem(key)
      if (problem !== undefined) report([name, 'packer', key], problem, 'key')
    }
  }
  for (const [name, group] of raw) checkTemplateText(name, group, report)
  for (const [name, group] of raw) {
    // One release bucket for the fleet: a deploy of several groups uploads to one place.
    if (name !== BASE && group.release_bucket !== undefined) report([name, 'release_bucket'], `release_bucket is a setting of the whole fleet; set it in ${BASE} only`, 'key')
    // One registry for the fleet: agents of every group must see each other's services.
    if (name !== BASE && group.registry !== undefined) report([name, 'registry'], `registry is a setting of the whole fleet; set it in ${BASE} only`, 'key')
    group.registry?.endpoints.forEach((url, i) => {
      const problem = endpointProblem(url)
      if (problem !== undefined) report([name, 'registry', 'endpoints', i], problem)
    })
  }
  if (diagnostics.length > 0) return {ok: false, diagnostics}

  const base = (raw.get(BASE) ?? {}) as Plain
  const groups = new Map<string, Group>()
  for (const [name, own] of raw) {
    const merged = name === BASE ? base : inherit(base, own as Plain)
    const group = resolve(name, merged as RawGroup, report)
    if (group) groups.set(name, group)
  }
  for (const group of groups.values()) checkAwsLimits(group, raw.get(group.name), report)
  if (diagnostics.length > 0) return {ok: false, diagnostics}
  const nodes: NodesFile = {file: doc.file, groups, environments: new Map()}
  for (const [name, env] of rawEnvironments) {
    const environment = resolveEnvironment(name, env, raw, base, report)
    if (environment) nodes.environments.set(name, environment)
  }
  if (diagnostics.length > 0) return {ok: false, diagnostics}
  const releaseBucket = raw.get(BASE)?.release_bucket
  if (releaseBucket !== undefined) nodes.releaseBucket = releaseBucket
  const registry = raw.get(BASE)?.registry
  if (registry !== undefined) nodes.registry = {endpoints: [...registry.endpoints], ...(registry.project === undefined ? {} : {project: registry.project})}
  for (const problem of unknownDependencies(raw, nodes, didYouMean)) report(problem.path, problem.message)
  if (diagnostics.length > 0) return {ok: false, diagnostics}
  return {ok: true, nodes}
}

/**
 * The __environments__ entry, checked: names, the keys no environment may set (each with why),
 * the schema, groups that exist, one default, and no two environments naming one registry project.
 */
function parseEnvironments(declared: unknown, fastOk: boolean, groups: ReadonlyMap<string, RawGroup>, report: Report): Map<string, RawEnvironment> {
  const parsed = new Map<string, RawEnvironment>()
  if (!isDict(declared) || Object.keys(declared).length === 0) {
    report([ENVIRONMENTS], `expected a dict of environment names to what each changes, e.g. {"staging": {"region": "us-west-2"}, "production": {}}, got ${isDict(declared) ? 'an empty dict' : describe(declared)}`)
    return parsed
  }
  for (const [name, value] of Object.entries(declared)) {
    const path = [ENVIRONMENTS, name]
    if (!ENVIRONMENT_NAME.test(name) || name === '_default') {
      report(path, name === '_default' ? '"_default" is Chef\'s own environment; name yours otherwise' : 'environment names are 1–32 of letters, digits, "_" and "-" (they become Chef environment and Pulumi stack names)', 'key')
      continue
    }
    let ok = true
    const forbidden = (dict: unknown, at: KeyPath, where: 'environment' | 'group'): void => {
      if (!isDict(dict)) return
      for (const key of Object.keys(dict)) {
        const problem = forbiddenEnvironmentKey(key, where)
        if (problem !== undefined) {
          report([...at, key], `an environment may not set "${key}": ${problem}`, 'key')
          ok = false
        }
      }
    }
    forbidden(value, path, 'environment')
    if (isDict(value) && isDict(value.groups)) for (const group of Object.keys(value.groups)) forbidden(value.groups[group], [...path, 'groups', group], 'group')
    if (!ok) continue
    if (fastOk) {
      parsed.set(name, value as RawEnvironment)
      continue
    }
    const result = schemas().environmentSchema.safeParse(value)
    if (result.success) parsed.set(name, result.data)
    else for (const issue of result.error.issues) mapIssue(issue, path, value, report, 'environment')
  }
  const defaults = [...parsed].filter(([, env]) => env.default === true)
  for (const [name] of defaults.slice(1)) report([ENVIRONMENTS, name, 'default'], `only one environment may be the default, and "${defaults[0]?.[0] ?? ''}" already is; remove this`)
  const projects = new Map<string, string>()
  for (const [name, env] of parsed) {
    for (const group of Object.keys(env.groups ?? {})) {
      if (group === BASE) report([ENVIRONMENTS, name, 'groups', group], `set what this environment changes for every group at its own level, not under groups.${BASE}`, 'key')
      else if (!groups.has(group) && groups.size > 0) {
        const guess = didYouMean(group, [...groups.keys()].filter((g) => g !== BASE))
        report([ENVIRONMENTS, name, 'groups', group], `no group "${group}" in this file${guess ? `; did you mean "${guess}"?` : ''}`, 'key')
      }
    }
    env.registry?.endpoints.forEach((url, i) => {
      const problem = endpointProblem(url)
      if (problem !== undefined) report([ENVIRONMENTS, name, 'registry', 'endpoints', i], problem)
    })
    const levels: Array<[KeyPath, RawEnvironment | NonNullable<RawEnvironment['groups']>[string]]> = [[[ENVIRONMENTS, name], env], ...Object.entries(env.groups ?? {}).map(([g, v]): [KeyPath, typeof v] => [[ENVIRONMENTS, name, 'groups', g], v])]
    for (const [at, settings] of levels) {
      // Whatever reaches a Packer template is checked as a group's would be.
      for (const key of Object.keys(settings.packer ?? {})) {
        const problem = packerOptionProblem(key)
        if (problem !== undefined) report([...at, 'packer', key], problem, 'key')
      }
      checkTemplateText(String(at.at(-1)), {tags: settings.tags, ssh_username: settings.ssh_username, packer: settings.packer} as RawGroup, (path, message, kind) => report([...at, ...path.slice(1)], message, kind))
    }
    const project = env.registry?.project
    if (project === undefined) continue
    const other = projects.get(project)
    if (other !== undefined) report([ENVIRONMENTS, name, 'registry', 'project'], `environment "${other}" already uses registry project "${project}"; environments must not share one (they would see each other's services)`)
    projects.set(project, name)
  }
  return parsed
}

/** Every group (and __base__) resolved in one environment, with problems placed at the environment's keys. */
function resolveEnvironment(name: string, env: RawEnvironment, raw: ReadonlyMap<string, RawGroup>, base: Plain, report: Report): Environment | undefined {
  const at = [ENVIRONMENTS, name]
  const groups = new Map<string, Group>()
  let ok = true
  const { groups: perGroup, ...level } = env
  for (const [groupName, own] of raw) {
    const inherited = groupName === BASE ? base : inherit(base, own as Plain)
    const first = overlay(inherited, level as Plain, false)
    const changes = perGroup?.[groupName]
    const second = changes === undefined ? first : overlay(first.merged, changes as Plain, true)
    for (const problem of second.problems) {
      report([...at, 'groups', groupName, problem.key], problem.message, 'key')
      ok = false
    }
    const merged = second.merged as RawGroup
    if (isDict(merged.autoscale) && !sizesInOrder(merged.autoscale)) {
      const where = changes?.autoscale !== undefined ? [...at, 'groups', groupName, 'autoscale'] : level.autoscale !== undefined ? [...at, 'autoscale'] : [groupName, 'autoscale']
      report(where, `in environment "${name}", group ${groupName} would have autoscale.node_min ${merged.autoscale.node_min} above node_max ${merged.autoscale.node_max}; make node_min at most node_max`)
      ok = false
      continue
    }
    const group = resolve(groupName, merged, report)
    if (!group) {
      ok = false
      continue
    }
    group.environment = name
    groups.set(groupName, group)
    const placed: Report = (path, message, kind) => report(changes?.tags !== undefined ? [...at, 'groups', groupName, 'tags'] : level.tags !== undefined ? [...at, 'tags'] : path, `in environment "${name}": ${message}`, kind)
    checkAwsLimits(group, raw.get(groupName), placed)
  }
  if (!ok) return undefined
  const environment: Environment = {
    name,
    default: env.default === true,
    chef: {
      description: env.description ?? `The ${name} environment (muster)`,
      default_attributes: env.default_attributes ?? {},
      override_attributes: env.override_attributes ?? {},
      cookbook_versions: env.cookbook_versions ?? {},
    },
    groups,
  }
  if (env.registry !== undefined) environment.registry = {endpoints: [...env.registry.endpoints], ...(env.registry.project === undefined ? {} : {project: env.registry.project})}
  if (env.release_bucket !== undefined) environment.releaseBucket = env.release_bucket
  return environment
}

function resolve(name: string, g: RawGroup, report: (path: KeyPath, message: string, at?: 'key' | 'value') => void): Group | undefined {
  const missing = (key: string, example: string): void =>
    report([name], `no ${key}: set "${key}" (e.g. ${example}) in this group or in ${BASE}`, 'key')
  if (g.region === undefined) missing('region', '"us-east-1"')
  if (g.instance_type === undefined) missing('instance_type', '"m5.large"')
  const fromBase = g.from_base === true
  if (fromBase && name === BASE) report([name, 'from_base'], `${BASE} cannot build from itself; remove from_base here`)
  if (fromBase && g.packer === false) report([name, 'from_base'], 'from_base needs baking, but packer is false; remove one of them')
  if (!fromBase && g.source_ami === undefined) missing('source_ami', '"ami-1ebb2077"')
  if (g.region === undefined || g.instance_type === undefined) return undefined

  const group: Group = {
    name,
    description: g.description ?? '',
    autoscale: g.autoscale ?? false,
    type: g.type ?? 'amazon-ebs',
    region: g.region,
    instance_type: g.instance_type,
    from_base: fromBase,
    ssh_username: g.ssh_username ?? 'ubuntu',
    security_groups: [...new Set(g.security_groups ?? [])],
    subnets: g.subnets ?? [],
    tags: g.tags ?? {},
    default_attributes: g.default_attributes ?? {},
    override_attributes: g.override_attributes ?? {},
    run_list: uniqueRunList(g.run_list ?? []),
    post_run_list: uniqueRunList(g.post_run_list ?? []),
    packer: g.packer ?? {},
    services: g.services ?? {},
    service_cookbooks: [...new Set(g.service_cookbooks ?? [])],
    depends_on: [...new Set(g.depends_on ?? [])],
  }
  if (!fromBase && g.source_ami !== undefined) group.source_ami = g.source_ami
  if (g.volume_size !== undefined) group.volume_size = g.volume_size
  return group
}

type Report = (path: KeyPath, message: string, at?: 'key' | 'value') => void

/** Refuses "{{" in every string (and key) of a group that reaches its Packer template. */
function checkTemplateText(name: string, group: RawGroup, report: Report): void {
  const visit = (value: unknown, path: KeyPath): void => {
    if (typeof value === 'string') {
      if (value.includes(GO_TEMPLATE)) report(path, GO_TEMPLATE_MESSAGE)
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, [...path, i]))
    } else if (isDict(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes(GO_TEMPLATE)) report([...path, key], `the key ${GO_TEMPLATE_MESSAGE}`, 'key')
        visit(item, [...path, key])
      }
    }
  }
  visit(group.description, [name, 'description'])
  visit(group.ssh_username, [name, 'ssh_username'])
  visit(group.tags, [name, 'tags'])
  if (group.packer !== false) visit(group.packer, [name, 'packer'])
}

/** AWS's limits on tags and image descriptions, on the group as inherited. */
function checkAwsLimits(group: Group, own: RawGroup | undefined, report: Report): void {
  const where = (key: string): KeyPath => (own !== undefined && isDict(own) && key in own ? [group.name, key] : [group.name])
  // Inherited tags are reported once, where they are written.
  for (const key of Object.keys(own?.tags ?? {})) {
    if (/^aws:/i.test(key)) report([group.name, 'tags', key], `tag names starting with "aws:" are reserved by AWS, got ${JSON.stringify(key)}; rename it`, 'key')
  }
  // In an environment muster adds muster:environment too.
  const ownKeys = group.environment === undefined ? OWN_TAG_KEYS : [...OWN_TAG_KEYS, TAG_ENVIRONMENT]
  const count = new Set([...Object.keys(group.tags), ...ownKeys]).size
  if (count > MAX_TAGS) {
    report(where('tags'), `AWS allows at most ${MAX_TAGS} tags on a resource and muster adds ${ownKeys.length} of its own (${ownKeys.join(', ')}); this group would have ${count} (inherited tags included); remove ${count - MAX_TAGS}`)
  }
  if (group.description.length > MAX_DESCRIPTION) {
    report(where('description'), `expected a description of at most ${MAX_DESCRIPTION} characters (AWS's limit for an image description), got ${group.description.length}; shorten it`)
  }
}

function mapIssue(issue: z.core.$ZodIssue, prefix: KeyPath, groupValue: unknown, report: Report, kind: 'group' | 'environment' = 'group'): void {
  const path = [...prefix, ...(issue.path as Array<string | number>)]
  if (issue.code === 'unrecognized_keys') {
    const known = kind === 'environment' ? environmentKeysAt(issue.path as Array<string | number>) : knownKeysAt(issue.path as Array<string | number>)
    for (const key of issue.keys) {
      const guess = didYouMean(key, known)
      report([...path, key], `unknown key "${key}"${guess ? `; did you mean "${guess}"?` : ''} (known keys: ${known.join(', ')})`, 'key')
    }
    return
  }
  if (issue.code === 'invalid_key') {
    // A record's key failed its own schema (a service name with a space): name the key itself.
    const key = String(path.at(-1))
    report(path, `${issue.issues[0]?.message ?? issue.message}, got ${JSON.stringify(key)}`, 'key')
    return
  }
  if (issue.code === 'invalid_union') {
    // A union of `false` and a dict: when the value is a dict, the dict branch's own problems are
    // the useful ones ("node_min: expected a whole number"), not "expected false or a dict".
    const deeper = issue.errors.find((branch) => branch.length > 0 && branch.every((i) => i.path.length > 0 || i.code === 'unrecognized_keys' || i.code === 'custom'))
    if (deeper && isDict(valueAt(groupValue, issue.path as Array<string | number>))) {
      for (const inner of deeper) mapIssue({...inner, path: [...(issue.path as PropertyKey[]), ...inner.path]} as z.core.$ZodIssue, prefix, groupValue, report, kind)
      return
    }
  }
  const actual = valueAt(groupValue, issue.path as Array<string | number>)
  if (actual === undefined && issue.code === 'invalid_type') {
    report(path, `missing key "${String(path.at(-1))}": ${issue.message}`)
    return
  }
  const shown = ['invalid_type', 'invalid_union', 'invalid_value', 'invalid_format', 'too_small', 'too_big']
  const got = shown.includes(issue.code) ? `, got ${describe(actual)}` : ''
  report(path, `${issue.message}${got}`)
}

function knownKeysAt(path: ReadonlyArray<string | number>): string[] {
  if (path[0] === 'autoscale') return Object.keys(schemas().autoscaleSchema.shape)
  if (path[0] === 'services') return Object.keys(schemas().serviceSchema.shape)
  if (path[0] === 'registry') return ['endpoints', 'project']
  return [...Object.keys(schemas().groupSchema.shape)]
}

function environmentKeysAt(path: ReadonlyArray<string | number>): string[] {
  const inGroup = path[0] === 'groups' && path.length >= 2
  const rest = inGroup ? path.slice(2) : path
  if (rest[0] === 'autoscale') return Object.keys(schemas().autoscaleSchema.shape)
  if (rest[0] === 'registry') return ['endpoints', 'project']
  return Object.keys((inGroup ? schemas().environmentGroupSchema : schemas().environmentSchema).shape)
}

function valueAt(value: unknown, path: ReadonlyArray<string | number>): unknown {
  let current = value
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string | number, unknown>)[segment]
  }
  return current
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a dict'
  const text = JSON.stringify(value)
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`
}

/** The closest known key within a small edit distance, for "did you mean". */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(input.length / 3)) + 1
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost)
    }
    previous = current
  }
  return previous[b.length] ?? 0
}
