// The bake part: Packer runs as a command resource (shell-command.ts), replaced when the template's or
// the cookbooks' hash changes — so an unchanged group is not rebaked — and the AMI id (read back
// from Packer's manifest by `muster packer:ami`) is the command's stdout and a stack output.
//
// Nothing machine-specific goes into the resource's inputs (they live in state, shared by a team):
// muster's own path, the project root and packer's path reach the command through the
// environment the engine passes on (MUSTER_NODE, MUSTER_BIN, MUSTER_ROOT, MUSTER_PACKER).
import {dirname} from 'node:path'

import * as pulumi from '@pulumi/pulumi'

import {COOKBOOKS_HASH_VAR, packerManifestPath} from '../artifacts/packer.js'
import {ShellCommand} from './shell-command.js'

/** Where a part's command writes its stderr, relative to the project root; muster streams it. */
export const partLog = (group: string, part: string): string => `.muster/logs/${group}-${part}.log`

export const BAKE_TYPE = 'muster:stack:Bake'
export const RETENTION_TYPE = 'muster:stack:Retention'

export interface BakeArgs {
  group: string
  /** Relative to the project root. */
  templatePath: string
  nodesPath: string
  templateHash: string
  /** Of the cookbooks the group's run list uses, with their dependencies (artifacts/cookbooks.ts). */
  cookbooksHash: string
  /** from_base groups: the base image they build from; a new one rebakes them. */
  baseImage?: string
}

const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

export class Bake extends pulumi.ComponentResource {
  readonly imageId: pulumi.Output<string>

  constructor(name: string, args: BakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super(BAKE_TYPE, name, {}, opts)
    const create = [
      'cd "$MUSTER_ROOT"',
      // Packer's manifest post-processor does not create its directory (and fails after the AMI exists).
      `mkdir -p ${shellQuote(dirname(packerManifestPath(args.group)))}`,
      // Packer's own output goes to stderr, where it streams to the user; stdout is the AMI id alone.
      // The cookbooks hash reaches the image's muster:cookbooks-hash tag through a Packer variable.
      `"\${MUSTER_PACKER:-packer}" build -color=false -var ${shellQuote(`${COOKBOOKS_HASH_VAR}=${args.cookbooksHash}`)} ${shellQuote(args.templatePath)} 1>&2`,
      `"$MUSTER_NODE" "$MUSTER_BIN" packer:ami ${shellQuote(args.group)} --nodes ${shellQuote(args.nodesPath)}`,
    ].join(' && ')
    const build = new ShellCommand(
      'packer-build',
      {create, triggers: [args.templateHash, args.cookbooksHash, ...(args.baseImage === undefined ? [] : [args.baseImage])], log: partLog(args.group, 'bake')},
      // A new image never deletes the old one: retention decides what goes.
      {parent: this, deleteBeforeReplace: false},
    )
    this.imageId = build.stdout.apply((s) => s.trim())
    this.registerOutputs({imageId: this.imageId})
  }
}

export interface RetentionArgs {
  group: string
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
    const create = `cd "$MUSTER_ROOT" && "$MUSTER_NODE" "$MUSTER_BIN" packer:retain ${shellQuote(args.group)} --keep ${args.keep} --nodes ${shellQuote(args.nodesPath)}`
    new ShellCommand('retain', {create: `${create} 1>&2`, triggers: [args.imageId, String(args.keep), args.askedAt], log: partLog(args.group, 'retention')}, {parent: this})
    this.registerOutputs({})
  }
}
