// The Packer template of a group, in Packer's HCL2 JSON syntax (`*.pkr.json`).
//
// Never a credential: Packer reads AWS credentials from the environment or an instance profile.
// HCL identifiers must start with a letter and `12_04-bee` does not, so the source and build have
// fixed names and the group lives in ami_name and tags.
import {BASE, type Group} from '../nodes/model.js'
import {IMDS, ownerTags, TAG_COOKBOOKS_HASH, TAG_GROUP, TAG_PROJECT, TAG_TEMPLATE_HASH} from '../lib/tags.js'
import {sha256, toJsonText} from './json.js'
import {roleName, rolePath} from './role.js'

export const packerTemplatePath = (group: string): string => `packer/${group}.pkr.json`
export const packerManifestPath = (group: string): string => `.muster/manifests/${group}.json`
export const PROVISION_SCRIPT = 'templates/packer/provision.sh'
export const COOKBOOKS_DIR = 'cookbooks'
export const SOURCE_NAME = 'image'
export const BUILD_NAME = 'muster'

/**
 * The Packer variable the bake sets to the group's cookbooks hash (see cookbooks.ts). A variable, not
 * a literal, so the committed template does not go stale with every cookbook edit; a build run by
 * hand without `-var` tags the image with an empty cookbooks hash.
 */
export const COOKBOOKS_HASH_VAR = 'cookbooks_hash'

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
  // With no communicator nothing can be uploaded or run during the bake: the image converges at boot.
  const provisioners = extra.communicator === 'none' ? [] : packerProvisioners(group)
  const assemble = (hash: string): Record<string, unknown> => assembleTemplate(group, options, {source, provisioners, hash})
  // The hash covers everything that shapes the image: the template itself (with a fixed
  // placeholder where the hash goes), the role it converges and the provisioning script.
  const hash = sha256(JSON.stringify(assemble('')), options.roleText, options.provisionScript).slice(0, 16)
  const template = assemble(hash)
  return {template, text: toJsonText(template), hash}
}

/** The amazon-ebs source block muster owns (the group's packer dict is laid over it). */
function packerSource(group: Group, {flavor, project}: Pick<PackerOptions, 'flavor' | 'project'>): Record<string, unknown> {
  const source: Record<string, unknown> = {
    region: group.region,
    instance_type: group.instance_type,
    ssh_username: escapeHclTemplate(group.ssh_username),
    ami_name: `${group.name} \${local.timestamp}`,
    ami_description: group.description ? escapeHclTemplate(group.description) : `muster group ${group.name}`,
  }
  if (group.from_base) {
    source.source_ami_filter = {
      // This project's base only: another project's __base__ in the same account is not ours to build on.
      filters: {[`tag:${TAG_GROUP}`]: BASE, [`tag:${TAG_PROJECT}`]: escapeHclTemplate(project), state: 'available'},
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

/** Upload the role and cookbooks, then converge with chef-solo through the provisioning script. */
function packerProvisioners(group: Group): Array<Record<string, unknown>> {
  return [
    {shell: {inline: ['mkdir -p /tmp/muster/roles']}},
    // chef-solo finds role[role-GROUP] by its file name in role_path.
    {file: {source: rolePath(group.name), destination: `/tmp/muster/roles/${roleName(group.name)}.json`}},
    {file: {source: COOKBOOKS_DIR, destination: '/tmp/muster'}},
    {
      shell: {
        script: PROVISION_SCRIPT,
        environment_vars: [`MUSTER_ROLE=${roleName(group.name)}`, 'MUSTER_DIR=/tmp/muster'],
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
  template.locals = {timestamp: '${formatdate("YYYYMMDDhhmmss", timestamp())}'}
  const owner = escapeStrings(ownerTags({project}))
  const tags = {
    ...escapeStrings(group.tags),
    Name: group.name,
    [TAG_GROUP]: group.name,
    ...owner,
    [TAG_TEMPLATE_HASH]: parts.hash,
    [TAG_COOKBOOKS_HASH]: `\${var.${COOKBOOKS_HASH_VAR}}`,
  }
  template.source = {'amazon-ebs': {[SOURCE_NAME]: {...parts.source, tags, run_tags: {Name: `muster-bake-${group.name}`, [TAG_GROUP]: group.name, ...owner}}}}
  const build: Record<string, unknown> = {name: BUILD_NAME, sources: [`source.amazon-ebs.${SOURCE_NAME}`]}
  if (parts.provisioners.length > 0) build.provisioner = parts.provisioners
  build['post-processor'] = [{manifest: {output: packerManifestPath(group.name), strip_path: true, custom_data: {group: group.name, template_hash: parts.hash}}}]
  template.build = [build]
  return template
}
