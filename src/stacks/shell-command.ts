// A command run by the Pulumi engine as a resource: created by running a shell command, replaced
// (run again) when its triggers change, its stdout an output. muster's bake and retention parts
// are such commands.
//
// Why not @pulumi/command's local.Command, as DESIGN.md first planned: its provider plugin
// (pulumi-resource-command) cannot be built or fetched where muster is developed and tested (its
// Go module is not served by the module proxy), and every Pulumi CLI already carries the Node
// dynamic-provider host this needs — one plugin fewer for users to install, and the same engine
// semantics (preview, targets, replace on trigger change, state) as any other resource.
//
// The provider below is serialised into the stack's state and run by the engine in another
// process: it may only use what it captures, and Node built-ins captured as CommonJS modules are
// serialised as require() calls (an ESM namespace is not serialisable, hence createRequire).
// Nothing machine-specific goes into its inputs: the command reads MUSTER_ROOT, MUSTER_NODE, MUSTER_BIN and
// friends from the environment the engine passes on.
import {createRequire} from 'node:module'

import * as pulumi from '@pulumi/pulumi'

const requireCjs = createRequire(import.meta.url)
const childProcess = requireCjs('node:child_process') as typeof import('node:child_process')
const fs = requireCjs('node:fs') as typeof import('node:fs')
const path = requireCjs('node:path') as typeof import('node:path')

export interface ShellCommandInputs {
  /** Run with /bin/sh -c in MUSTER_ROOT; stdout becomes the `stdout` output. */
  create: string
  /** Any change runs the command again (a replace). */
  triggers: string[]
  /** Where stderr goes, relative to MUSTER_ROOT (muster streams it to the user while it runs). */
  log: string
}

interface ShellCommandOutputs extends ShellCommandInputs {
  stdout: string
}

const shellCommandProvider: pulumi.dynamic.ResourceProvider<ShellCommandInputs, ShellCommandOutputs> = {
  async create(inputs) {
    const root = process.env.MUSTER_ROOT ?? process.cwd()
    const logPath = path.join(root, inputs.log)
    fs.mkdirSync(path.dirname(logPath), {recursive: true})
    const log = fs.openSync(logPath, 'w')
    try {
      const stdout = await new Promise<string>((resolve, reject) => {
        const child = childProcess.spawn('/bin/sh', ['-c', inputs.create], {cwd: root, env: process.env, stdio: ['ignore', 'pipe', log]})
        const chunks: Buffer[] = []
        child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk))
        child.on('error', reject)
        child.on('close', (code, signal) => {
          if (code === 0) return resolve(Buffer.concat(chunks).toString('utf8'))
          // muster streams the log while the command runs: the error names the log and its last
          // error line only, so nothing of the log is printed twice.
          const lines = fs.readFileSync(logPath, 'utf8').trimEnd().split('\n')
          const reason = [...lines].reverse().find((line) => /error/i.test(line)) ?? lines.at(-1) ?? ''
          reject(new Error(`command failed (${signal ?? `exit ${code}`})${reason ? `: ${reason.replace(/^[-=]+> /, '').trim()}` : ''} (the whole output: ${inputs.log})`))
        })
      })
      return {id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`, outs: {...inputs, stdout}}
    } finally {
      fs.closeSync(log)
    }
  },
  async diff(_id, olds, news) {
    const changed = JSON.stringify(olds.triggers) !== JSON.stringify(news.triggers) || olds.create !== news.create
    return {changes: changed, replaces: changed ? ['triggers'] : [], deleteBeforeReplace: false}
  },
  // Removing the record runs nothing: a baked AMI outlives it (retention decides what goes).
  async delete() {},
}

export class ShellCommand extends pulumi.dynamic.Resource {
  declare readonly stdout: pulumi.Output<string>

  constructor(name: string, args: {create: string; triggers: pulumi.Input<string>[]; log: string}, opts?: pulumi.CustomResourceOptions) {
    super(shellCommandProvider, name, {...args, stdout: undefined}, opts, 'muster', 'ShellCommand')
  }
}
