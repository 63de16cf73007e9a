// haproxy fed by the registry, the controller: on every change of the services this node depends
// on, render the user's template, check it with `haproxy -c`, install it atomically, and then
// either change servers through the runtime API (no reload: consul-template reloads on every
// change) or reload when the structure changed. A config that fails the check is never
// installed: the last good one stays, and the failure shows in /health and the log. Changes are
// applied one at a time; a burst of registry events becomes one render.
import {jitteredDelay} from '../lib/backoff.js'
import type {ServiceRecord} from '../registry/records.js'
import {buildModel, type DependencySpec, type HaproxyModel, planChange, renderHaproxy, type SlotMap} from './haproxy-config.js'
import type {HaproxyIo} from './haproxy-io.js'
import type {Logger} from './log.js'

export interface HaproxyStatus {
  config: string
  /** Reloads done since the agent started (a change of servers only never reloads). */
  reloads: number
  /** Server changes applied through the runtime API. */
  runtimeUpdates: number
  checkFailures: number
  /** The last failure (check, reload, runtime API), or null once a later change went through. */
  lastError: string | null
  /** Dependencies without a known port: no frontend for them. */
  skipped: string[]
  /** Live servers per backend. */
  servers: Record<string, number>
}

export interface HaproxyControllerOptions {
  io: HaproxyIo
  configPath: string
  node: string
  group: string
  /** Re-read on every render: the template is the user's and may change on the node. */
  template(): string
  dependencies(): readonly DependencySpec[]
  where(service: string): readonly ServiceRecord[]
  log: Logger
  /** Coalescing delay for bursts of registry events (ms). */
  settleMs?: number
}

export class HaproxyController {
  private current: {model: HaproxyModel; template: string; text: string} | undefined
  private slots: SlotMap = new Map()
  private chain: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private reloadOwed = false
  private retries = 0
  private retryTimer: NodeJS.Timeout | undefined
  private stopped = false
  readonly status: HaproxyStatus

  constructor(private readonly options: HaproxyControllerOptions) {
    this.status = {config: options.configPath, reloads: 0, runtimeUpdates: 0, checkFailures: 0, lastError: null, skipped: [], servers: {}}
  }

  /** The first render; resolves when it has been applied (or refused). */
  start(): Promise<void> {
    return this.enqueue()
  }

  /** A registry change or a reload of the agent's configuration: render again soon. */
  changed(): void {
    if (this.stopped || this.timer) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.enqueue()
    }, this.options.settleMs ?? 50)
  }

  /** Resolves once everything queued so far has been applied. */
  settled(): Promise<void> {
    return this.chain
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.retryTimer)
    await this.chain
  }

  private enqueue(): Promise<void> {
    this.chain = this.chain.then(() => this.apply()).catch((error: unknown) => this.fail('haproxy update failed', error))
    return this.chain
  }

  private fail(what: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error)
    this.status.lastError = `${what}: ${message}`
    this.options.log.error(what, {error: message})
    // haproxy may be restarting (its master CLI is away while it re-executes): try again soon,
    // backing off, rather than waiting for the next registry change.
    this.retries++
    if (!this.stopped && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        void this.enqueue()
      }, jitteredDelay(this.retries - 1, 500, 30_000))
    }
  }

  private async apply(): Promise<void> {
    if (this.stopped) return
    const template = this.options.template()
    const {model, slots} = buildModel({node: this.options.node, group: this.options.group, dependencies: this.options.dependencies(), where: (s) => this.options.where(s), previous: this.current?.model, slots: this.slots})
    const text = renderHaproxy(template, model)
    const installed = this.current?.text ?? this.options.io.installed()
    if (text === installed && !this.reloadOwed) {
      this.adopt(model, template, text, slots)
      return
    }
    const check = await this.options.io.check(text)
    if (!check.ok) {
      this.status.checkFailures++
      this.status.lastError = `the rendered config failed haproxy -c; the last good one stays installed: ${lastLines(check.output)}`
      this.options.log.error('haproxy config refused by haproxy -c; keeping the last good one', {output: lastLines(check.output)})
      return
    }
    const change = planChange(this.current && !this.reloadOwed ? this.current : undefined, {model, template})
    await this.options.io.install(text)
    // Installed: this is now the state a restart gives, whatever happens to the live process below.
    this.adopt(model, template, text, slots)
    if (change.kind === 'runtime') {
      try {
        await this.options.io.runtime(change.commands)
        this.status.runtimeUpdates += change.commands.length
        this.options.log.info('haproxy servers changed through the runtime API', {commands: change.commands.length})
        this.succeeded()
        return
      } catch (error) {
        this.options.log.warn('runtime API refused a change; reloading instead', {error: (error as Error).message})
      }
    }
    if (change.kind === 'none' && text === installed) return
    try {
      await this.options.io.reload()
      this.status.reloads++
      this.reloadOwed = false
      this.succeeded()
      this.options.log.info('haproxy reloaded', {backends: model.services.map((s) => s.name)})
    } catch (error) {
      // The file is right; the running haproxy is not. The next change reloads whatever it is.
      this.reloadOwed = true
      this.fail('haproxy reload failed', error)
    }
  }

  private succeeded(): void {
    this.status.lastError = null
    this.retries = 0
  }

  private adopt(model: HaproxyModel, template: string, text: string, slots: SlotMap): void {
    this.current = {model, template, text}
    this.slots = slots
    this.status.skipped = model.skipped
    this.status.servers = Object.fromEntries(model.services.map((s) => [s.name, s.servers.filter((x) => x.live).length]))
  }
}

function lastLines(output: string): string {
  return output.trim().split('\n').slice(-5).join(' | ')
}
