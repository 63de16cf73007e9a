// The cloud-init user data of a node: templates/user-data.sh with the group's role and the node's
// dna filled in. Pure and deterministic, because the text is part of the launch template: the same
// group must render the same bytes (no timestamps, no random ids), and a real change must show in
// a preview.
import type {Group} from '../nodes/model.js'
import {UserError} from '../errors.js'
import {renderDna} from './dna.js'
import {ENVIRONMENTS_DIR} from './chef-environment.js'
import {type FleetSettings, NODE_PATHS, renderAgentConfig, renderBootInstall, renderNodeNodesFile} from './node-agent.js'
import {AGENT_INSTALL_STEPS} from './packer.js'
import {renderRole, roleName} from './role.js'

export const USER_DATA_TEMPLATE = 'templates/user-data.sh'

/** EC2 refuses user data over 16 KiB (before base64). */
export const USER_DATA_LIMIT = 16 * 1024

export const USER_DATA_PLACEHOLDERS = ['group', 'role_name', 'role_json', 'dna_json', 'agent_json', 'nodes_json', 'start_agent', 'agent_boot_install', 'chef_environment'] as const
export type UserDataPlaceholder = (typeof USER_DATA_PLACEHOLDERS)[number]

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g

/** {{chef_environment}} alone on its line: the line goes when the nodes file has no environments. */
const CHEF_ENVIRONMENT_LINE = /^[ \t]*\{\{\s*chef_environment\s*\}\}[ \t]*\n/m

/**
 * Replaces `{{name}}` with values[name]. A placeholder the template uses but muster does not know
 * is an error rather than left in place, so a typo in the user's template fails the preview
 * instead of booting a node with a broken script.
 */
export function renderTemplate(template: string, values: Readonly<Record<string, string>>, source = USER_DATA_TEMPLATE): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => {
    const value = values[name]
    if (value === undefined) {
      throw new UserError(`${source} uses the placeholder {{${name}}}, which muster does not fill`, {
        hint: `Placeholders muster fills: ${Object.keys(values).map((k) => `{{${k}}}`).join(', ')}.`,
      })
    }
    return value
  })
}

// Shapes that are credentials whatever their context. Role attributes come from the nodes file, and
// a secret put there would end up readable by anyone who can describe the launch template.
const CREDENTIALS: ReadonlyArray<[RegExp, string]> = [
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, 'an AWS access key id'],
  [/aws_secret_access_key|aws_session_token/i, 'an AWS secret key setting'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
]

export interface UserDataOptions {
  /** The dna's id; the group's name (the Auto Scaling group's dna) unless given. */
  dnaId?: string
  /**
   * The nodes file's fleet-wide settings (registry, release bucket) and the project: what the
   * node's agent.json and nodes.json need besides the group. Without a registry the agent is
   * installed but not started: it would have nowhere to register.
   */
  fleet?: FleetSettings
}

const PLACEHOLDER_OF = (name: string): RegExp => new RegExp(`\\{\\{\\s*${name}\\s*\\}\\}`)

/**
 * The node's Chef environment, in a nodes file with environments: environments/ENV.json and the
 * solo.rb lines that make chef-solo converge in it. The environment_path is the current release's
 * environments/ when the node runs a release that has this environment (the agent switches
 * STATE/current before it converges one), so an environment's attributes go out with a deploy;
 * else the file written here, as of the launch template. Empty without environments.
 */
export function renderChefEnvironmentStep(group: Group, fleet: FleetSettings | undefined): string {
  const name = fleet?.environment
  if (name === undefined || fleet?.chefEnvironment === undefined) return ''
  // It goes into file names and solo.rb's Ruby strings; the nodes file restricts it already.
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`environment name ${JSON.stringify(name)} is not safe in a shell script`)
  const released = `${NODE_PATHS.state}/current/${ENVIRONMENTS_DIR}`
  const written = `${NODE_PATHS.etc}/${ENVIRONMENTS_DIR}`
  return [
    `# The node's Chef environment, "${name}" (the nodes file's __environments__): one role, many environments.`,
    `# chef-solo reads ${name}.json from environment_path: the current release's when it has one, else this.`,
    `mkdir -p "$MUSTER_DIR/${ENVIRONMENTS_DIR}"`,
    `cat >"$MUSTER_DIR/${ENVIRONMENTS_DIR}/${name}.json" <<'MUSTER_ENVIRONMENT_JSON'`,
    fleet.chefEnvironment.trimEnd(),
    'MUSTER_ENVIRONMENT_JSON',
    `cat >>"$MUSTER_DIR/solo.rb" <<'MUSTER_SOLO_ENVIRONMENT'`,
    `environment_path(File.file?("${released}/${name}.json") ? "${released}" : "${written}")`,
    `environment "${name}"`,
    'MUSTER_SOLO_ENVIRONMENT',
  ].join('\n')
}

/** The user data of a node of `group`, from the text of templates/user-data.sh. */
export function renderUserData(template: string, group: Group, options: UserDataOptions = {}): string {
  // The group name goes into single-quoted shell strings and file names; the nodes file already
  // restricts it to these characters, checked again because the script runs as root.
  if (!/^[A-Za-z0-9_-]+$/.test(group.name)) throw new Error(`group name ${JSON.stringify(group.name)} is not safe in a shell script`)
  // JSON text never has a line that is a bare word, so it cannot end the quoted here-documents early.
  const values: Record<UserDataPlaceholder, string> = {
    group: group.name,
    role_name: roleName(group.name),
    role_json: renderRole(group).trimEnd(),
    dna_json: renderDna(group, options.dnaId).trimEnd(),
    agent_json: renderAgentConfig(group, options.fleet).trimEnd(),
    nodes_json: renderNodeNodesFile(group, options.fleet).trimEnd(),
    start_agent: options.fleet?.registry === undefined ? 'no' : 'yes',
    agent_boot_install: renderBootInstall(group, options.fleet, AGENT_INSTALL_STEPS),
    chef_environment: renderChefEnvironmentStep(group, options.fleet),
  }
  // Without environments the user data is what it was before they existed, byte for byte: the
  // placeholder's line goes (an empty line would change every launch template and roll fleets).
  let source = template
  if (values.chef_environment === '') source = source.replace(CHEF_ENVIRONMENT_LINE, '')
  else if (!PLACEHOLDER_OF('chef_environment').test(source)) {
    throw new UserError(`${USER_DATA_TEMPLATE} has no {{chef_environment}}, and group ${group.name} is in environment ${options.fleet?.environment ?? group.environment ?? ''}`, {
      hint: 'Without it chef-solo would converge the node outside its Chef environment. Add a line {{chef_environment}} after the step that writes solo.rb and before chef-solo runs (muster\'s own template shows where).',
    })
  }
  const text = renderTemplate(source, values)
  for (const [pattern, what] of CREDENTIALS) {
    if (pattern.test(text)) {
      throw new UserError(`the user data of group ${group.name} contains ${what}`, {
        hint: 'User data is readable by anyone who can describe the instance or launch template. Remove the secret from the nodes file or templates/user-data.sh; give nodes AWS access through an instance profile.',
      })
    }
  }
  const size = Buffer.byteLength(text, 'utf8')
  if (size > USER_DATA_LIMIT) {
    throw new UserError(`the user data of group ${group.name} is ${size} bytes; EC2 accepts at most ${USER_DATA_LIMIT}`, {
      hint: 'Move large attributes out of the role (into a cookbook or data bag), or shorten templates/user-data.sh.',
    })
  }
  return text
}
