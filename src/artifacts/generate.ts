// The offline verbs' service: from the nodes file to the artifact set each verb asks for.
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {BASE, bakedGroups, type Group, isAutoscaled, isBaked, nodeGroups, type NodesFile, refuseBase, requireGroup, requirePacker} from '../nodes/model.js'
import {environmentPath, renderChefEnvironment} from './chef-environment.js'
import {asgDnaPath, renderDna} from './dna.js'
import {AGENT_UNIT, buildPackerTemplate, CONVERGE_SCRIPT, ENVIRONMENT_VAR, packerTemplatePath, PROVISION_SCRIPT, type PackerOptions} from './packer.js'
import {readProjectName} from './project-name.js'
import {renderRole, rolePath} from './role.js'
import {type Artifact, readProjectTemplate, type WritePolicy, type WriteReport, writeArtifacts} from './writer.js'

export type ArtifactKind = 'role' | 'dna' | 'packer'

export interface GenerateOptions {
  cwd: string
  nodesPath?: string | undefined
  /** --env or MUSTER_ENV; the nodes file's default environment when absent. */
  environment?: string | undefined
  /** One group, or undefined for every group the kinds apply to. */
  group?: string | undefined
  /** What to write and how; a kind absent here is not touched. */
  kinds: Partial<Record<ArtifactKind, WritePolicy>>
  check: boolean
  packerFlavor?: PackerOptions['flavor']
}

/** Where muster's own default templates live (the package root's templates/). */
export const BUNDLED_TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates')

export function packerFlavorFromEnv(env: NodeJS.ProcessEnv = process.env): PackerOptions['flavor'] {
  const value = env.MUSTER_PACKER_FLAVOR
  if (value === undefined || value === '' || value === 'current') return 'current'
  if (value === 'legacy') return 'legacy'
  throw new UserError(`MUSTER_PACKER_FLAVOR is "${value}"`, {hint: 'Use "current" (Packer ≥ 1.7 with the amazon plugin, the default) or "legacy" (Packer 1.6).'})
}

/** Groups each kind applies to when no group is named. */
function defaultGroups(nodes: NodesFile, kind: ArtifactKind): Group[] {
  const groups = nodeGroups(nodes)
  if (kind === 'dna') return groups.filter(isAutoscaled)
  // The base image is baked only when some group builds from it.
  if (kind === 'packer') return bakedGroups(nodes)
  return groups
}

function kindApplies(group: Group, kind: ArtifactKind): boolean {
  if (kind === 'dna') return isAutoscaled(group)
  if (kind === 'packer') return isBaked(group)
  return true
}

function checkApplies(group: Group, kind: ArtifactKind): void {
  // __base__ passes its settings on; only its image (packer:create __base__) is made from it.
  if (kind !== 'packer') refuseBase(group.name, kind === 'dna' ? 'Auto Scaling dna' : 'role')
  if (kind === 'dna' && group.autoscale === false) {
    throw new UserError(`group "${group.name}" has autoscale: false, so it has no Auto Scaling dna`, {
      hint: `Give it "autoscale": {"timeout": 120, "node_min": 1, "node_max": 2} in the nodes file, then run the command again.`,
    })
  }
  if (kind === 'packer') requirePacker(group)
}

/** The project's files a bake reads besides its template and role: yours to change, muster's defaults when missing. */
export interface BakeTexts {
  provisionScript: string
  agentUnit: string
  convergeScript: string
}

export function planArtifacts(nodes: NodesFile, options: Omit<GenerateOptions, 'cwd' | 'check'> & BakeTexts & {project: string}): Artifact[] {
  const artifacts = new Map<string, Artifact>()
  const add = (artifact: Artifact): void => {
    const existing = artifacts.get(artifact.path)
    // A file asked for twice keeps the stronger policy (update over ensure).
    if (!existing || existing.policy === 'ensure') artifacts.set(artifact.path, artifact)
  }
  const kinds = Object.entries(options.kinds) as Array<[ArtifactKind, WritePolicy]>
  const explicit = options.group === undefined ? undefined : requireGroup(nodes, options.group)
  const flavor = options.packerFlavor ?? 'current'
  for (const [kind, policy] of kinds) {
    const groups = explicit ? [explicit] : defaultGroups(nodes, kind)
    for (const group of groups) {
      if (explicit) {
        // A verb of several kinds (generate GROUP) makes what the group has, as it does without GROUP;
        // a verb of one kind (autoscale:create GROUP) says why the group has none.
        if (kinds.length > 1 && group.name !== BASE && !kindApplies(group, kind)) continue
        checkApplies(group, kind)
      }
      const roleText = renderRole(group)
      if (kind === 'role') add({path: rolePath(group.name), content: roleText, policy, group: group.name})
      if (kind === 'dna') {
        add({path: asgDnaPath(group.name), content: renderDna(group), policy, group: group.name})
        add({path: rolePath(group.name), content: roleText, policy: 'ensure', group: group.name})
      }
      if (kind === 'packer') {
        const texts = {provisionScript: options.provisionScript, agentUnit: options.agentUnit, convergeScript: options.convergeScript}
        const chefEnvironment = group.environment === undefined ? undefined : nodes.environments.get(group.environment)
        const environmentText = chefEnvironment === undefined ? {} : {environmentText: renderChefEnvironment(chefEnvironment)}
        const packer = buildPackerTemplate(group, {flavor, ...texts, roleText, project: options.project, ...environmentText})
        for (const artifact of packerArtifacts(group, {templateText: packer.text, roleText, ...texts}, policy)) add(artifact)
      }
    }
  }
  // Every environment's Chef environment goes with the roles: one role, many environments.
  const rolePolicy = options.kinds.role ?? (options.kinds.dna || options.kinds.packer ? 'ensure' : undefined)
  if (rolePolicy !== undefined) {
    for (const environment of nodes.environments.values()) add({path: environmentPath(environment.name), content: renderChefEnvironment(environment), policy: rolePolicy})
  }
  return [...artifacts.values()]
}

/**
 * A group's Packer template and the files it reads, kept when present: its role, the provisioning
 * script, and the agent's unit and converge command (the agent bundle itself: agent-bundle.ts).
 */
export function packerArtifacts(group: Group, texts: BakeTexts & {templateText: string; roleText: string}, policy: WritePolicy): Artifact[] {
  return [
    {path: packerTemplatePath(group.name, group.environment), content: texts.templateText, policy, group: group.name},
    {path: rolePath(group.name), content: texts.roleText, policy: 'ensure', group: group.name},
    {path: PROVISION_SCRIPT, content: texts.provisionScript, policy: 'ensure'},
    {path: AGENT_UNIT, content: texts.agentUnit, policy: 'ensure'},
    {path: CONVERGE_SCRIPT, content: texts.convergeScript, policy: 'ensure'},
  ]
}

/**
 * The project's provisioning script, or muster's default when the project has none yet. A nodes
 * file with environments gets the default that runs chef-solo --environment (MUSTER_ENVIRONMENT);
 * one without keeps the default it always had, byte for byte, so its template hash (and its image)
 * stays put. A project's own script used in an environment must read MUSTER_ENVIRONMENT.
 */
export function readProvisionScript(cwd: string, options: {environments?: boolean} = {}): string {
  const bundled = join(BUNDLED_TEMPLATES, 'packer', options.environments ? 'provision-environments.sh' : 'provision.sh')
  const text = readProjectTemplate(cwd, PROVISION_SCRIPT, bundled)
  if (options.environments && !text.includes(ENVIRONMENT_VAR)) {
    throw new UserError(`${PROVISION_SCRIPT} does not read ${ENVIRONMENT_VAR}, so a bake in an environment would converge without its Chef environment`, {
      hint: `Make it run chef-solo with environment_path "$MUSTER_DIR/environments" and --environment "$${ENVIRONMENT_VAR}" when ${ENVIRONMENT_VAR} is set (muster's default: ${bundled}), or delete it to get that default.`,
    })
  }
  return text
}

/** The project's bake files (provisioning script, agent unit, converge command), or muster's defaults. */
export function readBakeTexts(cwd: string, options: {environments?: boolean} = {}): BakeTexts {
  return {
    provisionScript: readProvisionScript(cwd, options),
    agentUnit: readProjectTemplate(cwd, AGENT_UNIT, join(BUNDLED_TEMPLATES, 'muster-agent.service')),
    convergeScript: readProjectTemplate(cwd, CONVERGE_SCRIPT, join(BUNDLED_TEMPLATES, 'muster-converge.sh')),
  }
}

export interface GenerateResult extends WriteReport {
  nodesFile: string
}

export function generate(options: GenerateOptions): GenerateResult {
  const nodes = loadNodes({cwd: options.cwd, path: options.nodesPath, environment: options.environment})
  const artifacts = planArtifacts(nodes, {
    ...options,
    ...readBakeTexts(options.cwd, {environments: nodes.environment !== undefined && options.kinds.packer !== undefined}),
    packerFlavor: options.packerFlavor ?? packerFlavorFromEnv(),
    // Read only when a Packer template is made: the other artifacts do not name the project.
    project: options.kinds.packer ? readProjectName(options.cwd) : '',
  })
  const report = writeArtifacts(options.cwd, artifacts, {check: options.check})
  return {...report, nodesFile: nodes.file}
}
