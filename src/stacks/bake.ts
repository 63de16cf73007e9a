// The bake part: Packer runs as a command resource (shell-command.ts), replaced when the template's or
// the cookbooks' hash changes — so an unchanged group is not rebaked — and the AMI id (read back
// from Packer's manifest by `muster packer:ami`) is the command's stdout and a stack output.
//
// Nothing machine-specific goes into the resource's inputs (they live in state, shared by a team):
// muster's own path, the project root and packer's path reach the command through the
// environment the engine passes on (MUSTER_NODE, MUSTER_BIN, MUSTER_ROOT, MUSTER_PACKER).
import {readFileSync, statSync} from 'node:fs'
import {dirname, join} from 'node:path'

import * as pulumi from '@pulumi/pulumi'

import {AGENT_SHA256_VAR, COOKBOOKS_HASH_VAR, packerManifestPath} from '../artifacts/packer.js'
import {qualifiedName} from '../lib/tags.js'
import {ShellCommand} from './shell-command.js'

/**
 * Where a part's command writes its stderr, relative to the project root; muster streams it.
 * `stack` is the group's stack name (GROUP, or GROUP.ENV), so two environments never share a log.
 */
export const partLog = (group: string, part: string): string => `.muster/logs/${group}-${part}.log`

/**
 * On Ctrl-C: SIGINT to the process group of a part's command that is running (the shell and Packer
 * with its plugins), which the command resource writes beside its log. Packer cancels its build,
 * removes its temporary instance, key pair and security group, and exits; the step then fails and
 * the engine stops. A pid file older than `since` is left from another run and is not trusted.
 */
export function interruptPart(root: string, group: string, part: string, since: number): boolean {
  const pidPath = join(root, partLog(group, part).replace(/\.log$/, '.pid'))
  try {
    if (statSync(pidPath).mtimeMs < since - 1000) return false
    const pid = Number.parseInt(readFileSync(pidPath, 'utf8').trim(), 10)
    if (!Number.isInteger(pid) || pid <= 1) return false
    process.kill(-pid, 'SIGINT')
    return true
  } catch {
    return false
  }
}

export const BAKE_TYPE = 'muster:stack:Bake'
export const RETENTION_TYPE = 'muster:stack:Retention'

export interface BakeArgs {
  group: string
  /** The environment the group is resolved in; its commands get --env ENV. */
  environment?: string | undefined
  /** Relative to the project root. */
  templatePath: string
  nodesPath: string
  templateHash: string
  /** Of the cookbooks the group's run list uses, with their dependencies (artifacts/cookbooks.ts). */
  cookbooksHash: string
  /** from_base groups: the base image they build from; a new one rebakes them. */
  baseImage?: string
  /** When the bake installs the agent: the sha256 of the bundle it copied; a new agent rebakes. */
  agentSha256?: string
}

const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

/** The arguments naming the group (and its environment) to muster's own commands inside the stack. */
const groupArgs = (group: string, nodesPath: string, environment: string | undefined): string =>
  `${shellQuote(group)} --nodes ${shellQuote(nodesPath)}${environment === undefined ? '' : ` --env ${shellQuote(environment)}`}`

export class Bake extends pulumi.ComponentResource {
  readonly imageId: pulumi.Output<string>
  /** True when the bake adopted an image a killed bake had left instead of running Packer. */
  readonly adopted: pulumi.Output<boolean>

  constructor(name: string, args: BakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super(BAKE_TYPE, name, {}, opts)
    const bake = [
      // Packer's own output goes to stderr, where it streams to the user; stdout is the AMI id alone.
      // The cookbooks hash reaches the image's muster:cookbooks-hash tag through a Packer variable.
      // So does the agent bundle's sha256, which the install step checks the upload against.
      `"\${MUSTER_PACKER:-packer}" build -color=false -var ${shellQuote(`${COOKBOOKS_HASH_VAR}=${args.cookbooksHash}`)}${args.agentSha256 === undefined ? '' : ` -var ${shellQuote(`${AGENT_SHA256_VAR}=${args.agentSha256}`)}`} ${shellQuote(args.templatePath)} 1>&2`,
      `"$MUSTER_NODE" "$MUSTER_BIN" packer:ami ${groupArgs(args.group, args.nodesPath, args.environment)}`,
    ].join(' && ')
    // First, an image a killed bake of the same inputs finished (its muster gone before the stack
    // recorded it) is adopted rather than baked twice: stdout is then "AMI adopted". Not for
    // from_base groups: their base image is no tag, so an older image could be of an older base.
    // Nor when the bake installs the agent: its sha256 is no tag either (yet), so an orphan could
    // carry an older agent.
    const adopt = `"$MUSTER_NODE" "$MUSTER_BIN" packer:orphan ${groupArgs(args.group, args.nodesPath, args.environment)} --template-hash ${shellQuote(args.templateHash)} --cookbooks-hash ${shellQuote(args.cookbooksHash)}`
    const create = [
      'cd "$MUSTER_ROOT"',
      // Packer's manifest post-processor does not create its directory (and fails after the AMI exists).
      `mkdir -p ${shellQuote(dirname(packerManifestPath(args.group, args.environment)))}`,
      args.baseImage === undefined && args.agentSha256 === undefined ? `{ ${adopt} || { ${bake}; }; }` : bake,
    ].join(' && ')
    const build = new ShellCommand(
      'packer-build',
      {create, triggers: [args.templateHash, args.cookbooksHash, ...(args.baseImage === undefined ? [] : [args.baseImage]), ...(args.agentSha256 === undefined ? [] : [`agent:${args.agentSha256}`])], log: partLog(qualifiedName(args.group, args.environment), 'bake')},
      // A new image never deletes the old one: retention decides what goes.
      {parent: this, deleteBeforeReplace: false},
    )
    this.imageId = build.stdout.apply((s) => s.trim().split(/\s+/)[0] ?? '')
    this.adopted = build.stdout.apply((s) => /\badopted\b/.test(s))
    this.registerOutputs({imageId: this.imageId, adopted: this.adopted})
  }
}

export interface RetentionArgs {
  group: string
  environment?: string | undefined
  nodesPath: string
  keep: number
  imageId: pulumi.Input<string>
  /** When packer:clean last asked; a new value re-runs retention. */
  askedAt: string
}

/** Muster's own AMI retention after each bake (and on packer:clean), as a command in the stack. */
export class Retention extends pulumi.ComponentResource {
  constructor(name: string, args: RetentionArgs, opts?: pulumi.ComponentResourceOptions) {
    super(RETENTION_TYPE, name, {}, opts)
    const create = `cd "$MUSTER_ROOT" && "$MUSTER_NODE" "$MUSTER_BIN" packer:retain ${shellQuote(args.group)} --keep ${args.keep} --nodes ${shellQuote(args.nodesPath)}${args.environment === undefined ? '' : ` --env ${shellQuote(args.environment)}`}`
    new ShellCommand('retain', {create: `${create} 1>&2`, triggers: [args.imageId, String(args.keep), args.askedAt], log: partLog(qualifiedName(args.group, args.environment), 'retention')}, {parent: this})
    this.registerOutputs({})
  }
}
