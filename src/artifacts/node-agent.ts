// What a node's agent is given at boot, as files the user data writes: /etc/muster/agent.json
// (the agent's settings) and /etc/muster/nodes.json (a nodes file of the node's own group alone).
// Pure and deterministic: both are part of the user data, so of the launch template.
import {BASE, type Group, type NodesFile, type RegistrySetting} from '../nodes/model.js'
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
  /** The Pulumi project's name: the registry project when the nodes file's registry names none. */
  project: string
  registry?: RegistrySetting
  releaseBucket?: string
  /** __base__'s source_ami: what a from_base group's base image is built from. */
  baseSourceAmi?: string
}

export function fleetSettings(nodes: NodesFile, project: string): FleetSettings {
  const settings: FleetSettings = {project}
  if (nodes.registry !== undefined) settings.registry = nodes.registry
  if (nodes.releaseBucket !== undefined) settings.releaseBucket = nodes.releaseBucket
  const baseAmi = nodes.groups.get(BASE)?.source_ami
  if (baseAmi !== undefined) settings.baseSourceAmi = baseAmi
  return settings
}

/** /etc/muster/agent.json: the agent's settings (keys as src/agent/settings.ts CONFIG_KEYS). No credentials. */
export function renderAgentConfig(group: Group, fleet: FleetSettings | undefined): string {
  const config: Record<string, string> = {group: group.name}
  if (fleet?.registry !== undefined) {
    config.etcd = fleet.registry.endpoints.join(',')
    config.project = fleet.registry.project ?? fleet.project
  }
  config.nodes = NODE_PATHS.nodesFile
  config.dna = NODE_PATHS.dna
  config.provision = NODE_PROVISION
  return toJsonText(config)
}

/**
 * /etc/muster/nodes.json: the node's group, resolved, as __base__, and the group itself with nothing
 * of its own but what __base__ cannot hold (from_base). Loaded by muster's own loader it resolves to
 * the same group; the node never sees the other groups.
 */
export function renderNodeNodesFile(group: Group, fleet: FleetSettings | undefined): string {
  const {name, from_base: fromBase, ...settings} = group
  const base: Record<string, unknown> = {...settings}
  // Defaults the loader fills in anyway are left out: the user data has 16 KiB.
  for (const key of ['description', 'security_groups', 'subnets', 'post_run_list', 'service_cookbooks', 'depends_on'] as const) {
    const value = base[key]
    if (value === '' || (Array.isArray(value) && value.length === 0)) delete base[key]
  }
  for (const key of ['tags', 'default_attributes', 'override_attributes', 'services'] as const) {
    const value = base[key]
    if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) delete base[key]
  }
  if (typeof base.packer === 'object' && base.packer !== null && Object.keys(base.packer).length === 0) delete base.packer
  // A from_base group has no source_ami of its own; __base__ needs one, and the base image's is the truth.
  if (fromBase && fleet?.baseSourceAmi !== undefined) base.source_ami = fleet.baseSourceAmi
  if (fleet?.registry !== undefined) base.registry = fleet.registry
  if (fleet?.releaseBucket !== undefined) base.release_bucket = fleet.releaseBucket
  // One line: read by the agent, not by people, and the user data has 16 KiB.
  return toJsonText({[BASE]: base, [name]: fromBase ? {from_base: true} : {}}, 0)
}
