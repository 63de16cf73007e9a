// Health-gated services: a service with a `health_check` is in the registry only while its check
// passes, so dependents (and their haproxy) never send traffic to a node that is up but not
// serving. The check is an HTTP path (starting with "/": a GET to the service's port on the node's
// address, where 2xx or 3xx passes) or a command (/bin/sh -c, where exit 0 passes). The defaults
// are haproxy's: every 2 s, healthy after 2 passes in a row (rise), unhealthy after 3 failures in
// a row (fall); a check that takes longer than its timeout (1 s) fails. A service starts
// unhealthy: it is registered once it has risen.
import {execFile} from 'node:child_process'

import type {Clock} from './debounce.js'
import type {Logger} from './log.js'

export interface HealthTiming {
  intervalMs: number
  timeoutMs: number
  rise: number
  fall: number
}

export const HEALTH_DEFAULTS: HealthTiming = {intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3}

export interface HealthCheckSpec {
  service: string
  check: string
  port: number | undefined
}

/** Runs one check; resolves with a failure's reason, or undefined when it passed. Never rejects. */
export type Probe = (spec: HealthCheckSpec, address: string, timeoutMs: number) => Promise<string | undefined>

export interface ServiceHealth {
  healthy: boolean
  passes: number
  failures: number
  /** Why the last check failed, or null after a pass. */
  lastError: string | null
  checkedAt: string | null
}

export interface HealthGateOptions {
  /** The checks of the services the node runs now (re-read at every round: a reload may change them). */
  specs(): readonly HealthCheckSpec[]
  address(): string
  timing: HealthTiming
  probe: Probe
  clock: Clock
  log: Logger
  /** A service became healthy or unhealthy. */
  changed(service: string, healthy: boolean): void
}

export class HealthGate {
  private readonly state = new Map<string, ServiceHealth>()
  private timer: unknown
  private running = false
  private stopped = false

  constructor(private readonly options: HealthGateOptions) {}

  /** May the service be in the registry now? A service without a check always may. */
  ready(service: string): boolean {
    const spec = this.options.specs().find((s) => s.service === service)
    return spec === undefined || this.state.get(service)?.healthy === true
  }

  get status(): Record<string, ServiceHealth> {
    return Object.fromEntries([...this.state].map(([name, health]) => [name, {...health}]))
  }

  start(): void {
    void this.round()
  }

  stop(): void {
    this.stopped = true
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer)
  }

  /** Checks every service once (all at once, each bounded by the timeout), then schedules the next round. */
  private async round(): Promise<void> {
    if (this.stopped || this.running) return
    this.running = true
    try {
      const specs = this.options.specs()
      for (const name of this.state.keys()) if (!specs.some((s) => s.service === name)) this.state.delete(name)
      await Promise.all(specs.map((spec) => this.checkOne(spec)))
    } finally {
      this.running = false
      if (!this.stopped) this.timer = this.options.clock.setTimeout(() => void this.round(), this.options.timing.intervalMs)
    }
  }

  private async checkOne(spec: HealthCheckSpec): Promise<void> {
    const {rise, fall, timeoutMs} = this.options.timing
    const failure = await this.options.probe(spec, this.options.address(), timeoutMs)
    if (this.stopped) return
    const health = this.state.get(spec.service) ?? {healthy: false, passes: 0, failures: 0, lastError: null, checkedAt: null}
    health.checkedAt = new Date(this.options.clock.now()).toISOString()
    if (failure === undefined) {
      health.passes++
      health.failures = 0
      health.lastError = null
    } else {
      health.failures++
      health.passes = 0
      health.lastError = failure
    }
    this.state.set(spec.service, health)
    if (!health.healthy && health.passes >= rise) {
      health.healthy = true
      this.options.log.info('service healthy', {service: spec.service, passes: health.passes})
      this.options.changed(spec.service, true)
    } else if (health.healthy && health.failures >= fall) {
      health.healthy = false
      this.options.log.warn('service unhealthy; withdrawn from the registry', {service: spec.service, failures: health.failures, error: failure})
      this.options.changed(spec.service, false)
    }
  }
}

/** The real checks: an HTTP GET to the service's port, or a command. */
export function systemProbe(env: NodeJS.ProcessEnv): Probe {
  return async (spec, address, timeoutMs) => {
    if (spec.check.startsWith('/')) {
      if (spec.port === undefined) return `${spec.service} has an HTTP health check but no port in the nodes file`
      const host = address.includes(':') ? `[${address}]` : address
      try {
        const response = await fetch(`http://${host}:${spec.port}${spec.check}`, {signal: AbortSignal.timeout(timeoutMs), redirect: 'manual'})
        await response.body?.cancel()
        return response.status >= 200 && response.status < 400 ? undefined : `GET ${spec.check} answered ${response.status}`
      } catch (error) {
        const cause = (error as {cause?: {code?: string}}).cause?.code
        return `GET ${spec.check} failed: ${(error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : cause ?? (error as Error).message}`
      }
    }
    return new Promise((resolve) => {
      execFile('/bin/sh', ['-c', spec.check], {timeout: timeoutMs, killSignal: 'SIGKILL', env: {...env, MUSTER_SERVICE: spec.service, MUSTER_ADDRESS: address, ...(spec.port === undefined ? {} : {MUSTER_PORT: String(spec.port)})}}, (error) => {
        if (!error) return resolve(undefined)
        const killed = (error as {killed?: boolean}).killed === true
        resolve(killed ? `the check command took longer than ${timeoutMs} ms` : `the check command exited ${typeof error.code === 'number' ? error.code : error.message}`)
      })
    })
  }
}
