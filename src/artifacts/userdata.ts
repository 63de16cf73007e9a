// The cloud-init user data of a node: templates/user-data.sh with the group's role and the node's
// dna filled in. Pure and deterministic, because the text is part of the launch template: the same
// group must render the same bytes (no timestamps, no random ids), and a real change must show in
// a preview.
import type {Group} from '../nodes/model.js'
import {UserError} from '../errors.js'
import {renderDna} from './dna.js'
import {type FleetSettings, renderAgentConfig, renderBootInstall, renderNodeNodesFile} from './node-agent.js'
import {AGENT_INSTALL_STEPS} from './packer.js'
import {renderRole, roleName} from './role.js'

export const USER_DATA_TEMPLATE = 'templates/user-data.sh'

/** EC2 refuses user data over 16 KiB (before base64). */
export const USER_DATA_LIMIT = 16 * 1024

export const USER_DATA_PLACEHOLDERS = ['group', 'role_name', 'role_json', 'dna_json', 'agent_json', 'nodes_json', 'start_agent', 'agent_boot_install'] as const
export type UserDataPlaceholder = (typeof USER_DATA_PLACEHOLDERS)[number]

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g

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
  }
  const text = renderTemplate(template, values)
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
