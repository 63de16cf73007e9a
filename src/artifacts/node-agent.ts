// What a node's agent is given at boot, as files the user data writes: /etc/muster/agent.json
// (the agent's settings) and /etc/muster/nodes.json (a nodes file of the node's own group alone).
// Pure and deterministic: both are part of the user data, so of the launch template.
import {registryProject, releaseProject} from '../nodes/environments.js'
import {BASE, type Group, nodeGroups, type NodesFile, type RegistrySetting} from '../nodes/model.js'
import {dependenciesOf, servicesOf} from '../nodes/services.js'
import {renderChefEnvironment} from './chef-environment.js'
import {toJsonText} from './json.js'

/** Where the bake installs the agent, its unit and the converge command (templates/packer). */
export const NODE_PATHS = {
  etc: '/etc/muster',
  agentConfig: '/etc/muster/agent.json',
  nodesFile: '/etc/muster/nodes.json',
  dna: '/etc/muster/dna.json',
  state: '/var/lib/muster',
  agentDir: '/opt/muster',
  agent: '/opt/muster/muster-agent.mjs',
  unit: '/etc/systemd/system/muster-agent.service',
  converge: '/usr/local/sbin/muster-converge',
  sudoers: '/etc/sudoers.d/muster',
} as const

/** The node's user the agent runs as (templates/muster-agent.service). */
export const AGENT_USER = 'muster'

/**
 * The agent's provision command on a node: chef is root's work, the agent is not root, so it goes
 * through the one command sudo lets it run. sudo drops the environment, so the agent's MUSTER_*
 * values become arguments (templates/muster-converge.sh checks them). -n: never wait for a password.
 */
export const NODE_PROVISION = `sudo -n ${NODE_PATHS.converge} "$MUSTER_ATTRIBUTES" "\${MUSTER_RUN_LIST:-}" "\${MUSTER_RELEASE_DIR:-}"`

/** The sudoers drop-in: exactly the converge command, as root, for the agent's user. */
export const SUDOERS_LINE = `${AGENT_USER} ALL=(root) NOPASSWD: ${NODE_PATHS.converge}`

/** Fleet-wide settings of the nodes file a node's files need besides its group. */
export interface FleetSettings {
  /**
   * The registry project when the nodes file's registry names none: the Pulumi project's name, with
   * ".ENV" appended in an environment (registryProject), so environments never see each other.
   */
  project: string
  /** The environment the fleet is resolved in: the node's Chef environment (absent without environments). */
  environment?: string
  /** With environments: the project of the release bucket's keys, the fleet's, shared by its environments. */
  releaseProject?: string
  /** The environment's Chef environment (environments/ENV.json's text), which the user data writes on the node. */
  chefEnvironment?: string
  registry?: RegistrySetting
  releaseBucket?: string
  /** __base__'s source_ami: what a from_base group's base image is built from. */
  baseSourceAmi?: string
  /** packer: false groups: the agent's files in the release bucket, which the user data installs at boot. */
  bootAgent?: {bucket: string; files: Array<{key: string; sha256: string; name: string}>}
  /** Each service, the first group that runs it and how (its recipe): what a node's dependencies resolve against. */
  providers?: Record<string, {group: string; recipe: string; cookbook: string}>
}

export function fleetSettings(nodes: NodesFile, project: string): FleetSettings {
  const settings: FleetSettings = {project: registryProject(nodes, project)}
  if (nodes.environment !== undefined) {
    settings.environment = nodes.environment
    settings.releaseProject = releaseProject(nodes, project)
    const environment = nodes.environments.get(nodes.environment)
    if (environment !== undefined) settings.chefEnvironment = renderChefEnvironment(environment)
  }
  if (nodes.registry !== undefined) settings.registry = nodes.registry
  if (nodes.releaseBucket !== undefined) settings.releaseBucket = nodes.releaseBucket
  const baseAmi = nodes.groups.get(BASE)?.source_ami
  if (baseAmi !== undefined) settings.baseSourceAmi = baseAmi
  const providers: NonNullable<FleetSettings['providers']> = {}
  for (const group of nodeGroups(nodes)) {
    for (const service of servicesOf(group)) providers[service.name] ??= {group: group.name, recipe: service.recipe, cookbook: service.cookbook}
  }
  settings.providers = providers
  return settings
}

/** /etc/muster/agent.json: the agent's settings (keys as src/agent/settings.ts CONFIG_KEYS). No credentials. */
export function renderAgentConfig(group: Group, fleet: FleetSettings | undefined): string {
  const config: Record<string, string> = {group: group.name}
  if (fleet?.registry !== undefined) {
    config.etcd = fleet.registry.endpoints.join(',')
    config.project = fleet.registry.project ?? fleet.project
  }
  const environment = fleet?.environment ?? group.environment
  if (environment !== undefined) config.environment = environment
  // Releases are filed under the fleet's project, which every environment shares (see releaseProject).
  if (fleet?.releaseProject !== undefined && fleet.releaseProject !== config.project) config.releaseProject = fleet.releaseProject
  config.nodes = NODE_PATHS.nodesFile
  config.dna = NODE_PATHS.dna
  config.provision = NODE_PROVISION
  return toJsonText(config)
}

const MACHINE_KEYS = ['region', 'instance_type', 'source_ami'] as const

/**
 * /etc/muster/nodes.json: a nodes file of the node's own group, resolved, that muster's loader
 * resolves to the same group. __base__ holds what every group needs (region, instance type,
 * source image) and the fleet-wide settings; the group holds the rest of its resolved settings.
 * The groups that run what it depends on are there only as the one recipe that runs each such
 * service, so the dependencies check; the node knows nothing else of the fleet.
 */
export function renderNodeNodesFile(group: Group, fleet: FleetSettings | undefined): string {
  // The environment is resolved into the group already; the node's file has none (agent.json names it).
  const {name, from_base: fromBase, environment: _environment, ...settings} = group
  const own: Record<string, unknown> = {...settings}
  // Defaults the loader fills in anyway are left out: the user data has 16 KiB.
  const defaults: Record<string, unknown> = {type: 'amazon-ebs', ssh_username: 'ubuntu', autoscale: false, description: ''}
  for (const [key, value] of Object.entries(own)) {
    const empty = (Array.isArray(value) && value.length === 0) || (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0)
    if (empty || defaults[key] === value) delete own[key]
  }
  const base: Record<string, unknown> = {}
  for (const key of MACHINE_KEYS) {
    if (own[key] !== undefined) base[key] = own[key]
    delete own[key]
  }
  // A from_base group has no source_ami of its own; __base__ needs one, and the base image's is the truth.
  if (fromBase) {
    if (fleet?.baseSourceAmi !== undefined) base.source_ami = fleet.baseSourceAmi
    own.from_base = true
  }
  if (fleet?.registry !== undefined) base.registry = fleet.registry
  if (fleet?.releaseBucket !== undefined) base.release_bucket = fleet.releaseBucket
  const file: Record<string, Record<string, unknown>> = {[BASE]: base, [name]: own}
  const runs = new Set(servicesOf(group).map((s) => s.name))
  for (const dependency of dependenciesOf(group)) {
    const provider = fleet?.providers?.[dependency]
    if (runs.has(dependency) || provider === undefined || provider.group === name) continue
    const stub = (file[provider.group] ??= {run_list: []}) as {run_list: string[]; service_cookbooks?: string[]}
    stub.run_list.push(provider.recipe)
    if (!provider.cookbook.endsWith('-service')) stub.service_cookbooks = [...new Set([...(stub.service_cookbooks ?? []), provider.cookbook])]
  }
  // One line: read by the agent, not by people, and the user data has 16 KiB.
  return toJsonText(file, 0)
}

/**
 * The user data's step that installs the agent at boot on a group with packer: false (no image of
 * muster's): each file fetched from the release bucket with the node's instance profile (`aws s3
 * cp`), checked against its sha256 here, then the bake's own install steps. Any failure stops the
 * boot script, saying what is missing. Empty for a baked group (its image has the agent).
 */
export function renderBootInstall(group: Group, fleet: FleetSettings | undefined, installSteps: readonly string[]): string {
  if (group.packer !== false) return '# The image has the agent: muster\'s bake installed it.'
  const agent = fleet?.bootAgent
  if (agent === undefined) {
    return [
      '# packer: false, and the nodes file names no release bucket (__base__.release_bucket) to install the agent from.',
      "echo 'muster: this group is not baked (packer: false) and the nodes file has no __base__.release_bucket: the agent is not installed' >&2",
    ].join('\n')
  }
  const lines = [
    '# packer: false: no image of muster\'s, so the agent comes from the release bucket, fetched with this',
    "# node's instance profile (it needs s3:GetObject there) and checked against these sha256s.",
    'if [ ! -e /opt/muster/muster-agent.mjs ]; then',
    "  command -v aws >/dev/null 2>&1 || { echo 'muster: cannot install the agent: this image has no aws CLI to fetch it from the release bucket (install it, or bake the group)' >&2; exit 1; }",
    '  mkdir -p /tmp/muster/agent',
  ]
  for (const file of agent.files) {
    const url = `s3://${agent.bucket}/${file.key}`
    lines.push(
      `  aws s3 cp --only-show-errors '${url}' /tmp/muster/agent/${file.name} || { echo 'muster: cannot fetch ${url} (does the instance profile allow s3:GetObject? did the verb that launched this node upload it?)' >&2; exit 1; }`,
      `  echo '${file.sha256}  /tmp/muster/agent/${file.name}' | sha256sum -c - || { echo 'muster: ${url} is not what muster uploaded (sha256 mismatch)' >&2; exit 1; }`,
    )
  }
  const bundle = agent.files.find((f) => f.name === 'muster-agent.mjs')
  lines.push(`  MUSTER_AGENT_SHA256=${bundle?.sha256 ?? ''}`, '  (', ...installSteps.map((step) => `    ${step}`), '  )', 'fi')
  return lines.join('\n')
}
