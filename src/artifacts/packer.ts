// The Packer template of a group, in Packer's HCL2 JSON syntax (`*.pkr.json`).
//
// Never a credential: Packer reads AWS credentials from the environment or an instance profile.
// HCL identifiers must start with a letter and `12_04-bee` does not, so the source and build have
// fixed names and the group lives in ami_name and tags.
import {BASE, type Group} from '../nodes/model.js'
import {IMDS, ownerTags, qualifiedName, TAG_COOKBOOKS_HASH, TAG_ENVIRONMENT, TAG_GROUP, TAG_PROJECT, TAG_TEMPLATE_HASH} from '../lib/tags.js'
import {environmentPath} from './chef-environment.js'
import {sha256, toJsonText} from './json.js'
import {AGENT_USER, NODE_PATHS, SUDOERS_LINE} from './node-agent.js'
import {roleName, rolePath} from './role.js'

/**
 * Per group, and per environment when the nodes file has them (packer/GROUP.ENV.pkr.json), so two
 * environments' bakes never write each other's template or manifest; without environments the paths
 * are what they always were.
 */
export const packerTemplatePath = (group: string, environment?: string): string => `packer/${qualifiedName(group, environment)}.pkr.json`
export const packerManifestPath = (group: string, environment?: string): string => `.muster/manifests/${qualifiedName(group, environment)}.json`
export const PROVISION_SCRIPT = 'templates/packer/provision.sh'
/** Where the bake uploads the Chef environment (environment_path of chef-solo). */
export const ENVIRONMENT_UPLOAD = '/tmp/muster/environments'
/** The variable the provisioning script reads to run chef-solo --environment. */
export const ENVIRONMENT_VAR = 'MUSTER_ENVIRONMENT'
export const COOKBOOKS_DIR = 'cookbooks'
export const SOURCE_NAME = 'image'
export const BUILD_NAME = 'muster'

/**
 * The Packer variable the bake sets to the group's cookbooks hash (see cookbooks.ts). A variable, not
 * a literal, so the committed template does not go stale with every cookbook edit; a build run by
 * hand without `-var` tags the image with an empty cookbooks hash.
 */
export const COOKBOOKS_HASH_VAR = 'cookbooks_hash'

/**
 * The Packer variable the bake sets to the sha256 of the agent bundle it copied to AGENT_BUNDLE: the
 * install step checks the uploaded file against it. A variable for the same reason as the cookbooks
 * hash: the committed template stays the same across muster upgrades, and the bake's trigger (not
 * the template hash) rebakes when the agent changes. Empty (a build by hand): not checked.
 */
export const AGENT_SHA256_VAR = 'agent_sha256'

/** The agent bundle as the bake copies it into the project (from muster's package; see agent-bundle.ts). */
export const AGENT_BUNDLE = '.muster/agent/muster-agent.mjs'
/** The agent's systemd unit and the converge command: the project's, yours to change. */
export const AGENT_UNIT = 'templates/muster-agent.service'
export const CONVERGE_SCRIPT = 'templates/muster-converge.sh'

export interface PackerOptions {
  /**
   * Packer ≥ 1.7 with the external amazon plugin wants a `required_plugins` block and knows
   * IMDSv2 options; Debian's packer 1.6.6 (amazon built in) rejects both. One setting, one generator.
   */
  flavor: 'current' | 'legacy'
  /** Content of templates/packer/provision.sh: part of the template hash. */
  provisionScript: string
  /** The role file's text: part of the template hash. */
  roleText: string
  /** The Pulumi project's name (readProjectName): every image is tagged muster:project=PROJECT. */
  project: string
  /** Content of templates/muster-agent.service: part of the template hash when the bake installs the agent. */
  agentUnit?: string
  /** Content of templates/muster-converge.sh: likewise. */
  convergeScript?: string
  /** In an environment: the text of environments/ENV.json the bake uploads; part of the template hash. */
  environmentText?: string
}

export const AMAZON_PLUGIN_VERSION = '>= 1.2.0'

export interface PackerTemplate {
  template: Record<string, unknown>
  text: string
  hash: string
}

/**
 * Packer reads every string of an HCL2 JSON template (and the keys of an object value) as an HCL
 * template: `${…}` is evaluated (`${file("/etc/hostname")}` reads a file at bake time) and `%{…}`
 * runs a directive. Text from the nodes file is the user's literal text, so both are escaped
 * (`$${`, `%%{`); only muster's own expressions (the timestamp) stay live.
 */
export function escapeHclTemplate(text: string): string {
  // A function replacement: in a replacement string, `$$` itself means one `$`.
  return text.replace(/([$%])\{/g, (_match, sigil: string) => `${sigil}${sigil}{`)
}

/** escapeHclTemplate on every string and key of a value from the nodes file. */
export function escapeHclValue(value: unknown): unknown {
  if (typeof value === 'string') return escapeHclTemplate(value)
  if (Array.isArray(value)) return value.map(escapeHclValue)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeHclTemplate(k), escapeHclValue(v)]))
  }
  return value
}

const escapeStrings = (record: Record<string, string>): Record<string, string> => escapeHclValue(record) as Record<string, string>

export function buildPackerTemplate(group: Group, options: PackerOptions): PackerTemplate {
  const extra = group.packer === false ? {} : (escapeHclValue(group.packer) as Record<string, unknown>)
  const source = {...packerSource(group, options), ...extra}
  const provisions = bakeProvisions(group)
  const provisioners = provisions ? packerProvisioners(group) : []
  const assemble = (hash: string): Record<string, unknown> => assembleTemplate(group, options, {source, provisioners, hash})
  // The hash covers everything that shapes the image: the template itself (with a fixed
  // placeholder where the hash goes), the role it converges, the provisioning script and, when the
  // bake installs the agent, its unit and converge command. The agent bundle is not in it (see
  // AGENT_SHA256_VAR).
  const agentParts = provisions ? [options.agentUnit ?? '', options.convergeScript ?? ''] : []
  // The environment's attributes shape the image too (nothing added without environments: same hash as before).
  const environmentParts = provisions && group.environment !== undefined ? [options.environmentText ?? ''] : []
  const hash = sha256(JSON.stringify(assemble('')), options.roleText, options.provisionScript, ...agentParts, ...environmentParts).slice(0, 16)
  const template = assemble(hash)
  return {template, text: toJsonText(template), hash}
}

/** The amazon-ebs source block muster owns (the group's packer dict is laid over it). */
function packerSource(group: Group, {flavor, project}: Pick<PackerOptions, 'flavor' | 'project'>): Record<string, unknown> {
  const source: Record<string, unknown> = {
    region: group.region,
    instance_type: group.instance_type,
    ssh_username: escapeHclTemplate(group.ssh_username),
    ami_name: `${qualifiedName(group.name, group.environment)} \${local.timestamp}`,
    ami_description: group.description ? escapeHclTemplate(group.description) : `muster group ${group.name}`,
  }
  if (group.from_base) {
    source.source_ami_filter = {
      // This project's base only: another project's __base__ in the same account is not ours to build on.
      filters: {
        [`tag:${TAG_GROUP}`]: BASE,
        [`tag:${TAG_PROJECT}`]: escapeHclTemplate(project),
        // …and this environment's base: staging's groups never build on production's base image.
        ...(group.environment === undefined ? {} : {[`tag:${TAG_ENVIRONMENT}`]: group.environment}),
        state: 'available',
      },
      owners: ['self'],
      most_recent: true,
    }
  } else {
    source.source_ami = group.source_ami
  }
  if (flavor === 'current') {
    // The bake instance answers only IMDSv2, and images it makes default to IMDSv2 at launch.
    source.metadata_options = {http_endpoint: IMDS.endpoint, http_tokens: IMDS.tokens, http_put_response_hop_limit: IMDS.hopLimit}
    source.imds_support = 'v2.0'
  }
  if (group.volume_size !== undefined) {
    source.launch_block_device_mappings = [{device_name: '/dev/sda1', volume_size: group.volume_size, volume_type: 'gp3', delete_on_termination: true}]
  }
  return source
}

/**
 * Whether the bake runs provisioners (converge, install the agent). With no communicator nothing can
 * be uploaded or run during the bake: the image converges at boot.
 */
export function bakeProvisions(group: Group): boolean {
  return group.packer !== false && group.packer.communicator !== 'none'
}

const AGENT_UPLOAD = '/tmp/muster/agent'

/**
 * Installs the agent, its unit, the converge command and the sudo rule that lets the agent's user
 * run that command alone. Run as root after the converge (a cookbook may be what installs Node).
 * The unit is not enabled: the user data does that, once the node has its settings. No `${`
 * anywhere: Packer would read it as HCL (the sha256 comes in through the environment).
 */
export const AGENT_INSTALL_STEPS: readonly string[] = [
  'set -eu',
  `A=${AGENT_UPLOAD}`,
  `if [ -n "$MUSTER_AGENT_SHA256" ]; then echo "$MUSTER_AGENT_SHA256  $A/muster-agent.mjs" | sha256sum -c -; fi`,
  "if [ ! -x /usr/bin/node ]; then echo 'muster: the image has no /usr/bin/node, which runs the muster agent (Node.js >= 20); install it in the source image or from a cookbook in the run list' >&2; exit 1; fi",
  "if ! command -v sudo >/dev/null 2>&1; then echo 'muster: the image has no sudo, through which the muster agent converges the node' >&2; exit 1; fi",
  `id -u ${AGENT_USER} >/dev/null 2>&1 || useradd --system --user-group --home-dir ${NODE_PATHS.state} --no-create-home --shell /usr/sbin/nologin ${AGENT_USER}`,
  `install -d -o root -g root -m 0755 ${NODE_PATHS.agentDir} ${NODE_PATHS.etc} /usr/local/sbin`,
  `install -d -o ${AGENT_USER} -g ${AGENT_USER} -m 0700 ${NODE_PATHS.state}`,
  `install -o root -g root -m 0644 $A/muster-agent.mjs ${NODE_PATHS.agent}`,
  `install -o root -g root -m 0644 $A/muster-agent.service ${NODE_PATHS.unit}`,
  `install -o root -g root -m 0755 $A/muster-converge.sh ${NODE_PATHS.converge}`,
  `printf '%s\\n' '${SUDOERS_LINE}' >$A/sudoers`,
  'if command -v visudo >/dev/null 2>&1; then visudo -cf $A/sudoers; fi',
  `install -d -o root -g root -m 0750 /etc/sudoers.d`,
  `install -o root -g root -m 0440 $A/sudoers ${NODE_PATHS.sudoers}`,
  'if command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload; fi',
  'rm -rf $A',
]

/**
 * Upload the role and cookbooks (and, in an environment, its Chef environment), converge with
 * chef-solo through the provisioning script, then install the agent.
 */
function packerProvisioners(group: Group): Array<Record<string, unknown>> {
  const environment = group.environment
  return [
    {shell: {inline: [`mkdir -p /tmp/muster/roles ${AGENT_UPLOAD}${environment === undefined ? '' : ` ${ENVIRONMENT_UPLOAD}`}`]}},
    // chef-solo finds role[role-GROUP] by its file name in role_path.
    {file: {source: rolePath(group.name), destination: `/tmp/muster/roles/${roleName(group.name)}.json`}},
    {file: {source: COOKBOOKS_DIR, destination: '/tmp/muster'}},
    // chef-solo --environment ENV finds ENV.json in environment_path.
    ...(environment === undefined ? [] : [{file: {source: environmentPath(environment), destination: `${ENVIRONMENT_UPLOAD}/${environment}.json`}}]),
    {
      shell: {
        script: PROVISION_SCRIPT,
        environment_vars: [`MUSTER_ROLE=${roleName(group.name)}`, 'MUSTER_DIR=/tmp/muster', ...(environment === undefined ? [] : [`${ENVIRONMENT_VAR}=${environment}`])],
        execute_command: "chmod +x {{ .Path }}; sudo -E sh -c '{{ .Vars }} {{ .Path }}'",
      },
    },
    // The agent (see agent-bundle.ts for how the bundle gets into the project), its unit and the converge command.
    {file: {source: AGENT_BUNDLE, destination: `${AGENT_UPLOAD}/muster-agent.mjs`}},
    {file: {source: AGENT_UNIT, destination: `${AGENT_UPLOAD}/muster-agent.service`}},
    {file: {source: CONVERGE_SCRIPT, destination: `${AGENT_UPLOAD}/muster-converge.sh`}},
    {
      shell: {
        inline: [...AGENT_INSTALL_STEPS],
        environment_vars: [`MUSTER_AGENT_SHA256=\${var.${AGENT_SHA256_VAR}}`],
        execute_command: "chmod +x {{ .Path }}; sudo -E sh -c '{{ .Vars }} {{ .Path }}'",
      },
    },
  ]
}

/** The whole template, tagged with `hash` (the template hash, or '' while hashing). */
function assembleTemplate(
  group: Group,
  {flavor, project}: Pick<PackerOptions, 'flavor' | 'project'>,
  parts: {source: Record<string, unknown>; provisioners: Array<Record<string, unknown>>; hash: string},
): Record<string, unknown> {
  const template: Record<string, unknown> = {}
  if (flavor === 'current') {
    template.packer = {required_plugins: {amazon: {version: AMAZON_PLUGIN_VERSION, source: 'github.com/hashicorp/amazon'}}}
  }
  template.variable = {[COOKBOOKS_HASH_VAR]: {type: 'string', default: '', description: "The hash of the cookbooks the group's run list uses; muster's bake sets it."}}
  if (parts.provisioners.length > 0) {
    template.variable = {
      ...(template.variable as Record<string, unknown>),
      [AGENT_SHA256_VAR]: {type: 'string', default: '', description: `The sha256 of ${AGENT_BUNDLE}; muster's bake sets it and the install step checks the upload against it.`},
    }
  }
  template.locals = {timestamp: '${formatdate("YYYYMMDDhhmmss", timestamp())}'}
  const owner = escapeStrings(ownerTags({project, environment: group.environment}))
  const qualified = qualifiedName(group.name, group.environment)
  const tags = {
    ...escapeStrings(group.tags),
    Name: qualified,
    [TAG_GROUP]: group.name,
    ...owner,
    [TAG_TEMPLATE_HASH]: parts.hash,
    [TAG_COOKBOOKS_HASH]: `\${var.${COOKBOOKS_HASH_VAR}}`,
  }
  template.source = {'amazon-ebs': {[SOURCE_NAME]: {...parts.source, tags, run_tags: {Name: `muster-bake-${qualified}`, [TAG_GROUP]: group.name, ...owner}}}}
  const build: Record<string, unknown> = {name: BUILD_NAME, sources: [`source.amazon-ebs.${SOURCE_NAME}`]}
  if (parts.provisioners.length > 0) build.provisioner = parts.provisioners
  const customData = {group: group.name, ...(group.environment === undefined ? {} : {environment: group.environment}), template_hash: parts.hash}
  build['post-processor'] = [{manifest: {output: packerManifestPath(group.name, group.environment), strip_path: true, custom_data: customData}}]
  template.build = [build]
  return template
}
