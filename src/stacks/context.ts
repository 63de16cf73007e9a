// Builds a group's ProgramContext: the artifacts the program needs, generated fresh from the nodes
// file, and the files the bake reads, which the caller writes before an update (so the bake always
// uses what the nodes file says) and not before a preview.
import {readdirSync, readFileSync, statSync, existsSync} from 'node:fs'
import {join, relative} from 'node:path'

import {BUNDLED_TEMPLATES, packerArtifacts, packerFlavorFromEnv, readProvisionScript} from '../artifacts/generate.js'
import {USER_DATA_TEMPLATE} from '../artifacts/userdata.js'
import {renderDna} from '../artifacts/dna.js'
import {sha256} from '../artifacts/json.js'
import {buildPackerTemplate, COOKBOOKS_DIR, packerTemplatePath} from '../artifacts/packer.js'
import {renderRole} from '../artifacts/role.js'
import {type Artifact, readProjectTemplate} from '../artifacts/writer.js'
import type {Group, NodesFile} from '../nodes/model.js'
import type {Intent} from './intent.js'
import type {ProgramContext} from './program.js'

/** One hash over every file below dir (paths and contents), so any cookbook change rebakes. */
export function hashTree(dir: string): string {
  if (!existsSync(dir)) return sha256('')
  const parts: string[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name)
      if (statSync(full).isDirectory()) walk(full)
      else parts.push(relative(dir, full), readFileSync(full, 'utf8'))
    }
  }
  walk(dir)
  return sha256(...parts).slice(0, 16)
}

/** The project's user data template, or muster's default when the project has none. */
export function readUserDataTemplate(root: string): string {
  return readProjectTemplate(root, USER_DATA_TEMPLATE, join(BUNDLED_TEMPLATES, 'user-data.sh'))
}

export interface GroupContext {
  program: ProgramContext
  /** Files the bake reads (its Packer template, role, provisioning script), to write before an update. */
  files: Artifact[]
}

/** The program's inputs, generated fresh from the nodes file; writes nothing. */
export function buildContext(root: string, nodes: NodesFile, group: Group, intent: Intent): GroupContext {
  const nodesPath = relative(root, join(root, nodes.file)) || nodes.file
  const program: ProgramContext = {group, intent, nodesPath, roleText: renderRole(group), dnaText: renderDna(group)}
  if (intent.fleet || intent.instances.length > 0) program.userDataTemplate = readUserDataTemplate(root)
  if (group.packer === false) return {program, files: []}
  const provisionScript = readProvisionScript(root)
  const template = buildPackerTemplate(group, {flavor: packerFlavorFromEnv(), provisionScript, roleText: program.roleText})
  program.bake = {templatePath: packerTemplatePath(group.name), templateHash: template.hash, cookbooksHash: hashTree(join(root, COOKBOOKS_DIR))}
  return {program, files: packerArtifacts(group, {templateText: template.text, roleText: program.roleText, provisionScript}, 'update')}
}
