// The node agent's core: one node's life in the registry. It announces the node and its services
// under one lease, re-provisions when a service it depends on gains or loses a node (debounced,
// single-flight), deregisters a service and waits for its dependents to let go before deleting it,
// and on stop deregisters everything at once. I/O goes through the store, the feed, the
// provisioner and writeFile, so many agents can share one etcd client (bench/) and the logic is
// testable on its own.
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {nodeKey, serviceKey} from '../registry/keys.js'
import {initialProvision, type NodeRecord, type ProvisionReason, type ProvisionStatus, type ServiceRecord} from '../registry/records.js'
import {jitteredDelay, type RegistryFeed} from '../registry/feed.js'
import type {RegistryStore, StoreLease} from '../registry/store.js'
import type {ViewChange} from '../registry/view.js'
import {buildAttributes, dependentsHoldingOn} from './attributes.js'
import {type Clock, Debouncer, Lock, systemClock, type Wait} from './debounce.js'
import type {Identity} from './identity.js'
import type {Logger} from './log.js'
import type {ProvisionResult, Provisioner} from './provisioner.js'

export interface AgentMetrics {
  provision(reason: ProvisionReason, ok: boolean, seconds: number): void
  queued(reason: ProvisionReason): void
}

export const noMetrics: AgentMetrics = {provision: () => undefined, queued: () => undefined}

export interface AgentOptions {
  identity: Identity
  project: string
  ttlSeconds: number
  wait: Wait
  drainMs: number
  stateDir: string
  store: RegistryStore
  feed: RegistryFeed
  provisioner: Provisioner
  log: Logger
  writeFile(path: string, text: string): Promise<void>
  metrics?: AgentMetrics
  clock?: Clock
  /** Skip the provision at start (bench: agents that only register and react). */
  bootProvision?: boolean
}

export interface AgentHealth {
  node: string
  group: string
  services: string[]
  registered: string[]
  dependsOn: string[]
  registry: {connected: boolean; endpoints: readonly string[]; revision: number; leaseId: string | null}
  provision: ProvisionStatus
  queue: {provisionPending: boolean; running: boolean; retryAt: string | null; decommissioning: string[]}
}

const RETRY_BASE_MS = 5000
const VERIFY_DELAY_MS = 500
const RETRY_CAP_MS = 300_000

export class Agent {
  identity: Identity
  private lease: StoreLease | undefined
  /** Every lease id this agent has held: a record on one of them is ours to take over. */
  private readonly leaseIds = new Set<string>()
  /** Has this agent ever owned its node key? Until it has, it must not delete anything on stop. */
  private claimed = false
  private readonly registered = new Set<string>()
  private readonly lock = new Lock()
  /** Registry writes and deletes in order: a re-publish never lands after a deregistration. */
  private readonly writes = new Lock()
  /** Revision of this agent's last registry write: the view must reach it before it can be judged. */
  private lastWrite = 0
  private verifyTimer: unknown
  private readonly debouncer: Debouncer
  private readonly clock: Clock
  private readonly metrics: AgentMetrics
  private provisionStatus: ProvisionStatus = initialProvision()
  private failures = 0
  private retryTimer: unknown
  private retryAt: number | undefined
  private repairing: Promise<void> | undefined
  private unsubscribe: (() => void) | undefined
  private readonly waiters = new Set<() => void>()
  private decommissioning: string[] = []
  private stopped = false
  private readonly since = new Date().toISOString()

  constructor(private readonly options: AgentOptions) {
    this.identity = options.identity
    this.clock = options.clock ?? systemClock
    this.metrics = options.metrics ?? noMetrics
    this.debouncer = new Debouncer(options.wait, () => this.provision('dependency').then(() => undefined), this.clock)
  }

  get attributesFile(): string {
    return join(this.options.stateDir, 'attributes.json')
  }

  /** Registers the node (not yet its services) and runs the boot provision. Rejects if etcd can't be reached. */
  async start(): Promise<void> {
    this.unsubscribe = this.options.feed.subscribe((change) => this.onChange(change))
    await this.register()
    if (this.options.bootProvision === false) {
      for (const s of this.identity.services) this.registered.add(s.name)
      await this.publish()
      return
    }
    this.metrics.queued('boot')
    void this.provision('boot')
  }

  /** A registry change: react when it touches a dependency; wake decommission waiters. */
  private onChange(change: ViewChange): void {
    if (this.stopped) return
    if (this.identity.dependsOn.some((s) => change.services.has(s))) {
      this.metrics.queued('dependency')
      this.debouncer.trigger()
    }
    if (change.nodes.size > 0) for (const wake of this.waiters) wake()
    if (change.nodes.has(this.identity.node) || [...this.registered].some((s) => change.services.has(s))) this.checkOwnKeys()
  }

  /**
   * Another writer deleted or changed this node's keys (a compromised node, an operator's etcdctl,
   * a detached put): the registry no longer says what this node is, so write it again.
   */
  private checkOwnKeys(): void {
    // Judged a moment later, not now: this agent's own writes pass through transient states.
    if (this.verifyTimer !== undefined || this.stopped) return
    this.verifyTimer = this.clock.setTimeout(() => {
      this.verifyTimer = undefined
      this.verifyOwnKeys()
    }, VERIFY_DELAY_MS)
  }

  private verifyOwnKeys(): void {
    if (this.stopped || !this.claimed || this.lock.busy || this.writes.busy) return
    const view = this.options.feed.view
    if (view.revision < this.lastWrite) return
    const self = this.identity.node
    const node = view.nodes.get(self)
    const nodeOk = node !== undefined && node.address === this.identity.address && node.group === this.identity.group
    const servicesOk = [...this.registered].every((s) => {
      const record = view.services.get(s)?.get(self)
      return record !== undefined && record.address === this.identity.address && record.port === this.serviceRecord(s).port
    })
    if (nodeOk && servicesOk) return
    this.options.log.warn('this node\'s registration was changed by another writer; writing it again', {node: nodeOk, services: servicesOk})
    void this.publish()
  }

  // ---- registration ------------------------------------------------------------------------

  private nodeRecord(): NodeRecord {
    return {
      node: this.identity.node,
      group: this.identity.group,
      address: this.identity.address,
      services: [...this.registered].sort(),
      dependsOn: this.identity.dependsOn,
      provision: this.provisionStatus,
      since: this.since,
    }
  }

  private serviceRecord(name: string): ServiceRecord {
    const ref = this.identity.services.find((s) => s.name === name)
    const record: ServiceRecord = {node: this.identity.node, group: this.identity.group, address: this.identity.address, since: this.since}
    if (ref?.port !== undefined) record.port = ref.port
    return record
  }

  /** Grants a lease (once, or again after losing it) and writes every key on it. Throws on failure. */
  private async register(): Promise<void> {
    if (!this.lease) {
      const lease = await this.options.store.grantLease(this.options.ttlSeconds)
      lease.onLost((error) => {
        if (this.lease !== lease || this.stopped) return
        this.options.log.warn('registry lease lost; registering again under a new one', {error: error.message})
        this.lease = undefined
        void this.repair()
      })
      this.lease = lease
      this.leaseIds.add(lease.id)
    }
    await this.claimNode(this.lease)
    await this.writeAll(this.lease)
  }

  /**
   * Takes the node's key, or waits (up to TTL + 1 s, long enough for a crashed predecessor's lease
   * to expire) while another agent holds it; then refuses, touching nothing of the other's.
   */
  private async claimNode(lease: StoreLease): Promise<void> {
    const key = nodeKey(this.options.project, this.identity.node)
    const deadline = this.clock.now() + (this.options.ttlSeconds + 1) * 1000
    for (;;) {
      const result = await lease.claim(key, JSON.stringify(this.nodeRecord()), this.leaseIds)
      if (result.ok) {
        this.claimed = true
        return
      }
      if (this.clock.now() >= deadline || this.stopped) {
        throw new UserError(`node ${this.identity.node} is already registered by another agent (lease ${result.holder})`, {
          hint: 'Stop the other agent, or give this one another --node. A crashed agent\'s registration expires after its TTL.',
        })
      }
      this.options.log.warn('node id held by another lease; waiting for it to expire', {holder: result.holder})
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }

  private writeAll(lease: StoreLease): Promise<void> {
    const {project} = this.options
    return this.writes.run(async () => {
      // `registered` is read inside the lock, so it is what the last deregistration left.
      let revision = await lease.put(nodeKey(project, this.identity.node), JSON.stringify(this.nodeRecord()))
      for (const name of [...this.registered].sort()) {
        revision = await lease.put(serviceKey(project, name, this.identity.node), JSON.stringify(this.serviceRecord(name)))
      }
      this.lastWrite = Math.max(this.lastWrite, revision)
    })
  }

  /** Deletes keys of this node through the write lock; resolves with the delete's revision. */
  private deregister(keys: string[]): Promise<number> {
    return this.writes.run(async () => {
      const revision = await this.options.store.deleteKeys(keys)
      this.lastWrite = Math.max(this.lastWrite, revision)
      return revision
    })
  }

  /** Writes the node's keys; on failure, repairs in the background (never deregisters). */
  private async publish(): Promise<void> {
    if (this.stopped) return
    const lease = this.lease
    if (!lease) {
      void this.repair()
      return
    }
    try {
      await this.writeAll(lease)
    } catch (error) {
      this.options.log.warn('registry write failed; retrying in the background', {error: (error as Error).message})
      void this.repair()
    }
  }

  /** Retries registration with backoff and jitter until it succeeds or the agent stops. */
  private repair(): Promise<void> {
    this.repairing ??= (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.register()
          this.options.log.info('registered in the registry', {leaseId: this.lease?.id})
          return
        } catch (error) {
          const delay = jitteredDelay(attempt, 250, 3000)
          this.options.log.warn('registry unreachable; keeping the last view and retrying', {error: (error as Error).message, retryInMs: delay})
          await new Promise((resolve) => setTimeout(resolve, delay))
        }
      }
    })().finally(() => {
      this.repairing = undefined
    })
    return this.repairing
  }

  // ---- provisioning ------------------------------------------------------------------------

  /** One provision run, through the node's lock. Resolves with its result. */
  provision(reason: ProvisionReason, runList?: string): Promise<ProvisionResult> {
    return this.lock.run(async () => {
      this.clearRetry()
      // The attributes and the revision are taken together, before this run's own registry writes
      // move the view on: MUSTER_REVISION is exactly the revision the attributes reflect.
      const view = this.options.feed.view
      const revision = view.revision
      const attributes = `${JSON.stringify(buildAttributes(this.attributesInput(), view), null, 2)}\n`
      const startedAt = new Date().toISOString()
      this.provisionStatus = {...this.provisionStatus, state: 'running', reason, startedAt, finishedAt: null}
      await this.publish()
      this.options.log.info('provision started', {reason, revision, runList})
      const result = await this.runProvisioner(reason, revision, attributes, runList)
      if (this.stopped && !result.ok) {
        this.options.log.info('provision cancelled: the agent is stopping', {reason})
        return result
      }
      this.metrics.provision(reason, result.ok, result.durationMs / 1000)
      const finishedAt = new Date().toISOString()
      if (result.ok) {
        this.failures = 0
        this.provisionStatus = {state: 'idle', ok: true, reason, startedAt, finishedAt, revision, message: null}
        this.options.log.info('provision finished', {reason, revision, ms: result.durationMs})
        if (reason === 'boot') for (const s of this.identity.services) this.registered.add(s.name)
      } else {
        const delay = this.scheduleRetry(reason, runList)
        const status = result.signal ?? `exit ${result.exitCode}`
        this.provisionStatus = {...this.provisionStatus, state: 'failed', ok: false, reason, startedAt, finishedAt, message: `${status}; retrying in ${Math.round(delay / 1000)} s\n${result.tail}`.slice(0, 4000)}
        this.options.log.error('provision failed', {reason, revision, status, retryInMs: delay, tail: result.tail})
      }
      await this.publish()
      return result
    })
  }

  /** Writes the attributes and runs the command; a failure of either is a failed run, never a crash. */
  private async runProvisioner(reason: ProvisionReason, revision: number, attributes: string, runList: string | undefined): Promise<ProvisionResult> {
    const started = Date.now()
    try {
      await this.options.writeFile(this.attributesFile, attributes)
      return await this.options.provisioner.run({reason, attributesFile: this.attributesFile, revision, ...(runList ? {runList} : {})})
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const tail = `cannot write ${this.attributesFile}: ${code ?? (error as Error).message}`
      return {ok: false, exitCode: null, signal: null, tail, durationMs: Date.now() - started}
    }
  }

  private attributesInput(): Parameters<typeof buildAttributes>[0] {
    const {identity} = this
    return {dna: identity.dna, node: identity.node, group: identity.group, address: identity.address, offers: identity.services, dependsOn: identity.dependsOn}
  }

  private scheduleRetry(reason: ProvisionReason, runList: string | undefined): number {
    this.failures++
    const delay = jitteredDelay(this.failures - 1, RETRY_BASE_MS, RETRY_CAP_MS)
    // A decommission's delete recipe is retried as part of the decommission, not on its own.
    if (runList !== undefined || this.stopped) return delay
    this.retryAt = this.clock.now() + delay
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined
      this.retryAt = undefined
      this.metrics.queued(reason)
      void this.provision(reason)
    }, delay)
    return delay
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.retryAt = undefined
  }

  // ---- decommission, reload, stop ----------------------------------------------------------

  /** Resolves once no live dependent of `services` still holds on past `since`, or after drainMs. */
  private async waitForDependents(services: readonly string[], since: number): Promise<string[]> {
    const self = this.identity.node
    let holding = dependentsHoldingOn(this.options.feed.view, services, since, self)
    if (holding.length === 0 || this.options.drainMs === 0) return holding
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.waiters.delete(check)
        this.clock.clearTimeout(timer)
        resolve()
      }
      const check = (): void => {
        holding = dependentsHoldingOn(this.options.feed.view, services, since, self)
        if (holding.length === 0) done()
      }
      const timer = this.clock.setTimeout(done, this.options.drainMs)
      this.waiters.add(check)
    })
    return holding
  }

  /**
   * The node's configuration changed (SIGHUP): services that left are deregistered, drained and
   * deleted before the new run list converges; new services register once it has converged.
   */
  async reload(next: Identity): Promise<void> {
    const before = new Set(this.identity.services.map((s) => s.name))
    const after = new Set(next.services.map((s) => s.name))
    const removed = this.identity.services.filter((s) => !after.has(s.name))
    const added = next.services.filter((s) => !before.has(s.name))
    const dependsChanged = next.dependsOn.join(',') !== this.identity.dependsOn.join(',')
    this.identity = next
    if (removed.length === 0) {
      if (added.length === 0 && !dependsChanged) {
        await this.publish()
        return
      }
      const result = await this.provision('config')
      if (result.ok) for (const s of added) this.registered.add(s.name)
      await this.publish()
      return
    }
    const names = removed.map((s) => s.name)
    this.decommissioning = names
    try {
      for (const name of names) this.registered.delete(name)
      const revision = await this.deregister(names.map((n) => serviceKey(this.options.project, n, this.identity.node)))
      await this.publish()
      this.options.log.info('deregistered; waiting for dependents to let go', {services: names, revision, drainMs: this.options.drainMs})
      const holding = await this.waitForDependents(names, revision)
      if (holding.length > 0) this.options.log.warn('drain period over; dependents still holding on', {services: names, nodes: holding})
      for (const service of removed) {
        await this.provision('decommission', `recipe[${service.cookbook}::delete-${service.name}]`)
      }
      const result = await this.provision('decommission')
      if (result.ok) for (const s of added) this.registered.add(s.name)
      await this.publish()
    } finally {
      this.decommissioning = []
    }
  }

  /** SIGTERM: deregister everything at once, let dependents let go (up to drainMs), stop. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.debouncer.stop()
    this.clearRetry()
    if (this.verifyTimer !== undefined) this.clock.clearTimeout(this.verifyTimer)
    const offered = [...this.registered]
    const lease = this.lease
    this.lease = undefined
    if (!this.claimed) {
      // Never registered (or refused): the node's keys, if any, are another agent's.
      await lease?.revoke().catch(() => lease.release())
      this.unsubscribe?.()
      return
    }
    try {
      const keys = [...offered.map((n) => serviceKey(this.options.project, n, this.identity.node)), nodeKey(this.options.project, this.identity.node)]
      const revision = await this.deregister(keys)
      await lease?.revoke()
      this.options.log.info('deregistered', {revision, services: offered})
      if (offered.length > 0) {
        const holding = await this.waitForDependents(offered, revision)
        if (holding.length > 0) this.options.log.warn('drain period over; dependents still holding on', {nodes: holding})
      }
    } catch (error) {
      // etcd is unreachable: the lease expires on its own after the TTL.
      lease?.release()
      this.options.log.warn('could not deregister; the registrations expire with the lease', {error: (error as Error).message, ttlSeconds: this.options.ttlSeconds})
    }
    this.unsubscribe?.()
    if (this.lock.busy) this.options.provisioner.cancel()
  }

  health(): AgentHealth {
    return {
      node: this.identity.node,
      group: this.identity.group,
      services: this.identity.services.map((s) => s.name),
      registered: [...this.registered].sort(),
      dependsOn: this.identity.dependsOn,
      registry: {connected: this.options.feed.connected && this.lease !== undefined, endpoints: this.options.store.endpoints, revision: this.options.feed.view.revision, leaseId: this.lease?.id ?? null},
      provision: this.provisionStatus,
      queue: {provisionPending: this.debouncer.pending, running: this.lock.busy, retryAt: this.retryAt === undefined ? null : new Date(this.retryAt).toISOString(), decommissioning: this.decommissioning},
    }
  }
}
