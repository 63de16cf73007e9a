// Builds a group's ProgramContext: the artifacts the program needs, generated fresh from the nodes
// file, and the files the bake reads, which the caller writes before an update (so the bake always
// uses what the nodes file says) and not before a preview.
import {join, relative} from 'node:path'

import {type AgentBundle, type BootAgent, bootAgent, readAgentBundle} from '../artifacts/agent-bundle.js'
import {BUNDLED_TEMPLATES, packerArtifacts, packerFlavorFromEnv, readBakeTexts} from '../artifacts/generate.js'
import {USER_DATA_TEMPLATE} from '../artifacts/userdata.js'
import {renderDna} from '../artifacts/dna.js'
import {environmentPath, renderChefEnvironment} from '../artifacts/chef-environment.js'
import {fleetSettings} from '../artifacts/node-agent.js'
import {cookbooksHash, type CookbookTree, groupRunList, readCookbookTree} from '../artifacts/cookbooks.js'
import {bakeProvisions, buildPackerTemplate, COOKBOOKS_DIR, packerTemplatePath} from '../artifacts/packer.js'
import {readProjectName} from '../artifacts/project-name.js'
import {renderRole} from '../artifacts/role.js'
import {type Artifact, readProjectTemplate} from '../artifacts/writer.js'
import type {Group, NodesFile} from '../nodes/model.js'
import type {Intent} from './intent.js'
import type {ProgramContext} from './program.js'

/** The project's user data template, or muster's default when the project has none. */
export function readUserDataTemplate(root: string): string {
  return readProjectTemplate(root, USER_DATA_TEMPLATE, join(BUNDLED_TEMPLATES, 'user-data.sh'))
}

export interface GroupContext {
  program: ProgramContext
  /** Files the bake reads (its Packer template, role, provisioning script), to write before an update. */
  files: Artifact[]
  /** muster's agent bundle, to copy into the project before an update that bakes (installAgentBundle). */
  agentBundle?: AgentBundle
  /** A packer: false group's agent files, to upload to the release bucket before an update that launches machines. */
  bootAgent?: BootAgent
}

export interface ContextInputs {
  /**
   * For a from_base group: the id of the newest base image of the project (what Packer's
   * source_ami_filter picks), '' when there is none. A bake trigger, so a new base rebakes the group.
   */
  baseImage?: string
  /** cookbooks/ as read once for a run of many groups (read here when absent). */
  cookbooks?: CookbookTree
}

/** The program's inputs, generated fresh from the nodes file; writes nothing. */
export function buildContext(root: string, nodes: NodesFile, group: Group, intent: Intent, inputs: ContextInputs = {}): GroupContext {
  const nodesPath = relative(root, join(root, nodes.file)) || nodes.file
  const project = readProjectName(root)
  const program: ProgramContext = {group, intent, nodesPath, project, roleText: renderRole(group), dnaText: renderDna(group)}
  let bootAgentFiles: BootAgent | undefined
  if (intent.fleet || intent.instances.length > 0) {
    program.userDataTemplate = readUserDataTemplate(root)
    program.fleet = fleetSettings(nodes, project)
    // No image of muster's: the user data installs the agent from the release bucket, where the
    // update puts it first (publishBootAgent).
    if (group.packer === false && nodes.releaseBucket !== undefined) {
      bootAgentFiles = bootAgent(nodes.releaseBucket, program.fleet.registry?.project ?? project, readAgentBundle(), readBakeTexts(root))
      program.fleet.bootAgent = {bucket: bootAgentFiles.bucket, files: bootAgentFiles.files.map(({key, sha256, name}) => ({key, sha256, name}))}
    }
  }
  if (group.packer === false) return {program, files: [], ...(bootAgentFiles ? {bootAgent: bootAgentFiles} : {})}
  const texts = readBakeTexts(root, {environments: group.environment !== undefined})
  const chefEnvironment = group.environment === undefined ? undefined : nodes.environments.get(group.environment)
  const environmentText = chefEnvironment === undefined ? undefined : renderChefEnvironment(chefEnvironment)
  const template = buildPackerTemplate(group, {flavor: packerFlavorFromEnv(), ...texts, roleText: program.roleText, project, ...(environmentText === undefined ? {} : {environmentText})})
  const cookbooks = inputs.cookbooks ?? readCookbookTree(join(root, COOKBOOKS_DIR))
  program.bake = {templatePath: packerTemplatePath(group.name, group.environment), templateHash: template.hash, cookbooksHash: cookbooksHash(groupRunList(group), cookbooks)}
  if (group.from_base) program.bake.baseImage = inputs.baseImage ?? ''
  const files = packerArtifacts(group, {templateText: template.text, roleText: program.roleText, ...texts}, 'update')
  // The bake uploads the Chef environment: written (as generate writes it) before the update.
  if (chefEnvironment !== undefined && environmentText !== undefined) files.push({path: environmentPath(chefEnvironment.name), content: environmentText, policy: 'update'})
  const context: GroupContext = {program, files}
  // Only a bake that provisions installs the agent; the bundle is read (and must exist) only then.
  if (intent.bake && bakeProvisions(group)) {
    context.agentBundle = readAgentBundle()
    program.bake.agentSha256 = context.agentBundle.sha256
  }
  return context
}
