// Who this node is: its group's services and dependencies from the nodes file, its dna, and its
// id and address (flags, else EC2's instance metadata through IMDSv2). Read at start and again on
// SIGHUP; every problem is a UserError before anything is registered.
import {accessSync, constants, existsSync, readFileSync} from 'node:fs'
import {delimiter, dirname, isAbsolute, join} from 'node:path'

import {UserError} from '../errors.js'
import {loadNodes} from '../nodes/load.js'
import {BASE, requireGroup} from '../nodes/model.js'
import {dependenciesOf, type ServiceRef, servicesOf} from '../nodes/services.js'
import {checkSegment} from '../registry/keys.js'

export interface Identity {
  node: string
  group: string
  address: string
  services: ServiceRef[]
  dependsOn: string[]
  /** The node's dna (chef's node JSON), the base of the attributes file. */
  dna: Record<string, unknown>
  dnaFile: string
  /** Directory of the nodes file: where Pulumi.yaml and dna/ are looked for. */
  projectDir: string
  /** What the nodes file says of each service in dependsOn (port, health check): haproxy's frontends. */
  dependencySpecs?: Record<string, {port?: number; health_check?: string}>
}

export interface IdentityInput {
  group: string
  nodes: string | undefined
  dna: string | undefined
  node: string
  address: string
  cwd: string
  env: NodeJS.ProcessEnv
  /** The node's environment (agent.json's "environment"), when it has one. */
  environment?: string | undefined
}

export function loadIdentity(input: IdentityInput): Identity {
  const all = loadNodes({cwd: input.cwd, path: input.nodes, env: input.env})
  // A node's own nodes.json has no environments (the user data resolved its group in one); a whole
  // nodes file with them is read as this node's environment sees it.
  const nodes = input.environment !== undefined && all.environments.size > 0 ? loadNodes({cwd: input.cwd, path: input.nodes, env: input.env, environment: input.environment}) : all
  if (input.group === BASE) throw new UserError('__base__ is not a node group', {hint: 'Give --group one of the groups that inherit from __base__ ("muster ls" lists them).'})
  const group = requireGroup(nodes, input.group)
  const projectDir = dirname(isAbsolute(nodes.file) ? nodes.file : join(input.cwd, nodes.file))
  const dnaFile = findDna(input, projectDir, group.autoscale !== false)
  return {
    node: checkSegment('--node', input.node, 'Give --node the instance id or another stable name of this node.'),
    group: group.name,
    address: input.address,
    services: servicesOf(group),
    dependsOn: dependenciesOf(group),
    dna: readDna(dnaFile),
    dnaFile,
    projectDir,
    dependencySpecs: Object.fromEntries(dependenciesOf(group).map((name) => [name, {...pickSpec(group.services[name])}])),
  }
}

function pickSpec(spec: {port?: number | undefined; health_check?: string | undefined} | undefined): {port?: number; health_check?: string} {
  const out: {port?: number; health_check?: string} = {}
  if (spec?.port !== undefined) out.port = spec.port
  if (spec?.health_check !== undefined) out.health_check = spec.health_check
  return out
}

/** --dna, else the one-off instance's dna, else the Auto Scaling group's, beside the nodes file. */
function findDna(input: IdentityInput, projectDir: string, autoscaled: boolean): string {
  if (input.dna !== undefined) {
    const path = isAbsolute(input.dna) ? input.dna : join(input.cwd, input.dna)
    if (!existsSync(path)) throw new UserError(`dna file ${input.dna} does not exist`, {hint: 'Check --dna, or leave it out to use dna/asg/GROUP.json.'})
    return path
  }
  const candidates = [join(projectDir, 'dna', 'instances', `${input.group}-${input.node}.json`), join(projectDir, 'dna', 'asg', `${input.group}.json`)]
  const found = candidates.find((p) => existsSync(p))
  if (!found) {
    throw new UserError(`no dna for group ${input.group}: looked for ${candidates.join(' and ')}`, {
      // autoscale:create refuses a group without autoscale: point such a group at its one-off dna.
      hint: autoscaled
        ? `Run "muster autoscale:create ${input.group}" to write dna/asg/${input.group}.json, or give --dna FILE.`
        : `Group ${input.group} has autoscale: false, so its nodes are one-off instances: "muster instance:create ${input.group} --name NAME" writes dna/instances/${input.group}-INSTANCEID.json (run the agent with --node INSTANCEID), or give --dna FILE.`,
    })
  }
  return found
}

function readDna(path: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new UserError(`cannot read the dna ${path}: ${(error as Error).message}`, {hint: 'Regenerate it with "muster autoscale:create GROUP", or fix the JSON.'})
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`the dna ${path} is not a JSON object`, {hint: 'Regenerate it with "muster autoscale:create GROUP".'})
  return value as Record<string, unknown>
}

/** The provision command's program must exist: a typo would otherwise fail every run, forever. */
export function checkProvisionCommand(command: string, env: NodeJS.ProcessEnv): void {
  const program = /^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*("[^"]+"|'[^']+'|\S+)/.exec(command)?.[1]?.replace(/^["']|["']$/g, '')
  if (!program) throw new UserError('the provision command is empty', {hint: 'Give --provision "COMMAND", or leave it out for chef-solo.'})
  const builtins = ['exec', 'env', 'true', 'false', ':', 'cd', 'set', 'test', '[', 'echo', 'printf', 'sh']
  if (builtins.includes(program)) return
  const executable = (path: string): boolean => {
    try {
      accessSync(path, constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  const found = program.includes('/') ? executable(program) : (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && executable(join(dir, program)))
  if (!found) {
    throw new UserError(`the provision command's program ${JSON.stringify(program)} is not ${program.includes('/') ? 'an executable file' : 'on PATH'}`, {
      hint: program === 'chef-solo' ? 'Install Chef (or Cinc) on this node, or give --provision "COMMAND".' : 'Check --provision (or "provision" in --config).',
    })
  }
}

const IMDS = 'http://169.254.169.254'

/** The instance id and private address from IMDSv2 (token first: IMDSv1 is off on muster's nodes). */
export async function fromInstanceMetadata(env: NodeJS.ProcessEnv, timeoutMs = 1000): Promise<{node: string; address: string}> {
  const base = env.MUSTER_IMDS_ENDPOINT ?? IMDS
  try {
    const tokenResponse = await fetch(`${base}/latest/api/token`, {method: 'PUT', headers: {'X-aws-ec2-metadata-token-ttl-seconds': '60'}, signal: AbortSignal.timeout(timeoutMs)})
    if (!tokenResponse.ok) throw new Error(`token request answered ${tokenResponse.status}`)
    const token = await tokenResponse.text()
    const get = async (path: string): Promise<string> => {
      const response = await fetch(`${base}/latest/meta-data/${path}`, {headers: {'X-aws-ec2-metadata-token': token}, signal: AbortSignal.timeout(timeoutMs)})
      if (!response.ok) throw new Error(`${path} answered ${response.status}`)
      return (await response.text()).trim()
    }
    return {node: await get('instance-id'), address: await get('local-ipv4')}
  } catch (error) {
    throw new UserError(`--node and --address were not given, and the EC2 instance metadata service did not answer (${(error as Error).message})`, {
      hint: 'Off EC2, give --node ID and --address ADDR.',
    })
  }
}
