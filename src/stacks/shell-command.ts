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

/** Whether any process of a process group is left. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const shellCommandProvider: pulumi.dynamic.ResourceProvider<ShellCommandInputs, ShellCommandOutputs> = {
  async create(inputs) {
    const root = process.env.MUSTER_ROOT ?? process.cwd()
    const logPath = path.join(root, inputs.log)
    // The command's process group, for muster to interrupt (see interruptPart in bake.ts).
    const pidPath = logPath.replace(/\.log$/, '') + '.pid'
    const engine = process.ppid
    // bin/provider-watchdog.cjs ends a host whose engine died only when no command runs in it.
    const running = globalThis as {musterRunningCommands?: number}
    running.musterRunningCommands = (running.musterRunningCommands ?? 0) + 1
    fs.mkdirSync(path.dirname(logPath), {recursive: true})
    const log = fs.openSync(logPath, 'w')
    try {
      const stdout = await new Promise<string>((resolve, reject) => {
        // Its own process group: the engine stops its plugins by signalling their group, and on
        // Ctrl-C muster signals this one, so Packer gets SIGINT (and cleans up) exactly once.
        const child = childProcess.spawn('/bin/sh', ['-c', inputs.create], {cwd: root, env: process.env, stdio: ['ignore', 'pipe', log], detached: true})
        if (child.pid !== undefined) fs.writeFileSync(pidPath, `${child.pid}\n`)
        const chunks: Buffer[] = []
        child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk))
        child.on('error', reject)
        child.on('close', async (code, signal) => {
          // The shell can end before what it started (Packer's plugins): wait, bounded, for the
          // whole group, so the step ends only when nothing of it runs any more.
          for (let i = 0; i < 600 && child.pid !== undefined && groupAlive(child.pid); i++) await new Promise((r) => setTimeout(r, 100))
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
      running.musterRunningCommands = (running.musterRunningCommands ?? 1) - 1
      fs.closeSync(log)
      fs.rmSync(pidPath, {force: true})
      // The engine that asked is gone (its muster was killed): nobody will stop this host, and
      // nothing can take the answer; end it rather than linger.
      if (process.ppid !== engine) setTimeout(() => process.exit(1), 200)
    }
  },
  // Only the triggers say what the command makes; a new way of running it (muster's own command
  // line changing between versions) is no reason to run it again.
  async diff(_id, olds, news) {
    const changed = JSON.stringify(olds.triggers) !== JSON.stringify(news.triggers)
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
