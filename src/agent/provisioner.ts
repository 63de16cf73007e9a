// Runs the provision command (chef-solo by default) and keeps its output in a capped log in the
// state dir: the log is rotated once it passes a size, so a chatty chef run cannot fill the disk,
// and the last lines of a failed run are kept for the node's registry key.
import {spawn} from 'node:child_process'
import {createWriteStream, existsSync, renameSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {ENVIRONMENTS_DIR} from '../artifacts/chef-environment.js'
import type {ProvisionReason} from '../registry/records.js'

/**
 * What chef-solo is given on a node: the attributes file; the run list to converge when it is not
 * the one solo.rb names (a delete recipe, or the current release's role); once the node runs a
 * release (instance:deploy), that release's cookbooks; and, in a nodes file with environments,
 * the node's Chef environment, read from the release's environments/ when it has one
 * (MUSTER_ENVIRONMENT_PATH) so an environment's attributes go out with the release.
 */
export const DEFAULT_PROVISION =
  'chef-solo --config /etc/muster/solo.rb --json-attributes "$MUSTER_ATTRIBUTES" --no-color ${MUSTER_RUN_LIST:+--override-runlist "$MUSTER_RUN_LIST"} ${MUSTER_RELEASE_DIR:+--config-option "cookbook_path=$MUSTER_RELEASE_DIR/cookbooks"} ${MUSTER_ENVIRONMENT:+--environment "$MUSTER_ENVIRONMENT"} ${MUSTER_ENVIRONMENT_PATH:+--config-option "environment_path=$MUSTER_ENVIRONMENT_PATH"}'

export const LOG_CAP_BYTES = 4 * 1024 * 1024
const TAIL_LINES = 20

export interface ProvisionRequest {
  reason: ProvisionReason
  attributesFile: string
  revision: number
  /** The run list chef-solo runs instead of solo.rb's: a delete recipe, or the current release's role. */
  runList?: string
  /** The current release's directory (STATE/releases/DIGEST), when the node runs one. */
  releaseDir?: string
}

export interface ProvisionResult {
  ok: boolean
  exitCode: number | null
  signal: string | null
  /** The last lines of output (for the node's registry key on failure). */
  tail: string
  durationMs: number
}

export interface Provisioner {
  run(request: ProvisionRequest): Promise<ProvisionResult>
  /** Stops a run in progress (SIGTERM to its process group). */
  cancel(): void
}

export interface CommandProvisionerOptions {
  command: string
  stateDir: string
  node: string
  group: string
  /** The node's Chef environment (absent in a nodes file without environments). */
  environment?: string | undefined
  env?: NodeJS.ProcessEnv
}

export class CommandProvisioner implements Provisioner {
  private child: ReturnType<typeof spawn> | undefined

  constructor(private readonly options: CommandProvisionerOptions) {}

  get logFile(): string {
    return join(this.options.stateDir, 'provision.log')
  }

  run(request: ProvisionRequest): Promise<ProvisionResult> {
    this.rotate()
    const started = Date.now()
    const log = createWriteStream(this.logFile, {flags: 'a', mode: 0o600})
    log.write(`==> ${new Date(started).toISOString()} reason=${request.reason} revision=${request.revision}${request.runList ? ` run_list=${request.runList}` : ''}\n`)
    const env: NodeJS.ProcessEnv = {
      ...(this.options.env ?? process.env),
      MUSTER_ATTRIBUTES: request.attributesFile,
      MUSTER_REASON: request.reason,
      MUSTER_NODE: this.options.node,
      MUSTER_GROUP: this.options.group,
      MUSTER_REVISION: String(request.revision),
    }
    if (request.runList) env.MUSTER_RUN_LIST = request.runList
    else delete env.MUSTER_RUN_LIST
    if (request.releaseDir) env.MUSTER_RELEASE_DIR = request.releaseDir
    else delete env.MUSTER_RELEASE_DIR
    // The environment's file in the release when it has one (a release built before environments has not).
    const environment = this.options.environment
    if (environment) env.MUSTER_ENVIRONMENT = environment
    else delete env.MUSTER_ENVIRONMENT
    const releaseEnvironments = request.releaseDir && environment ? join(request.releaseDir, ENVIRONMENTS_DIR) : undefined
    if (releaseEnvironments && existsSync(join(releaseEnvironments, `${environment}.json`))) env.MUSTER_ENVIRONMENT_PATH = releaseEnvironments
    else delete env.MUSTER_ENVIRONMENT_PATH
    let tail = ''
    return new Promise((resolve) => {
      // Its own process group, so a cancel reaches what the command started (chef's children too).
      const child = spawn('/bin/sh', ['-c', this.options.command], {env, stdio: ['ignore', 'pipe', 'pipe'], detached: true})
      this.child = child
      const collect = (chunk: Buffer): void => {
        log.write(chunk)
        tail = lastLines(tail + chunk.toString('utf8'), TAIL_LINES)
      }
      child.stdout?.on('data', collect)
      child.stderr?.on('data', collect)
      const finish = (exitCode: number | null, signal: string | null, error?: Error): void => {
        this.child = undefined
        if (error) tail = lastLines(`${tail}\n${error.message}`, TAIL_LINES)
        const ok = exitCode === 0 && !error
        log.end(`<== ${ok ? 'ok' : `failed (${signal ?? `exit ${exitCode}`})`} in ${Date.now() - started} ms\n`)
        resolve({ok, exitCode, signal, tail: tail.trim(), durationMs: Date.now() - started})
      }
      child.on('error', (error) => finish(null, null, error))
      child.on('close', (code, signal) => finish(code, signal))
    })
  }

  cancel(): void {
    const pid = this.child?.pid
    if (pid === undefined) return
    try {
      process.kill(-pid, 'SIGTERM')
    } catch {
      // Already gone.
    }
  }

  private rotate(): void {
    if (!existsSync(this.logFile)) return
    if (statSync(this.logFile).size < LOG_CAP_BYTES) return
    renameSync(this.logFile, `${this.logFile}.1`)
  }
}

export function lastLines(text: string, count: number): string {
  const lines = text.split('\n')
  return lines.slice(Math.max(0, lines.length - count - 1)).join('\n')
}
