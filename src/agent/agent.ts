// The node agent's core: one node's life in the registry. It announces the node and its services
// under one lease, re-provisions when a service it depends on gains or loses a node (debounced,
// single-flight), deregisters a service and waits for its dependents to let go before deleting it,
// and on stop deregisters everything at once. I/O goes through the store, the feed, the
// provisioner and writeFile, so many agents can share one etcd client (bench/) and the logic is
// testable on its own.
import {join} from 'node:path'

import {initialProvision, type NodeRecord, type ProvisionReason, type ProvisionStatus, type ServiceRecord} from '../registry/records.js'
import {jitteredDelay} from '../lib/backoff.js'
import type {RegistryFeed} from '../registry/feed.js'
import type {RegistryStore, StoreLease} from '../registry/store.js'
import type {ViewChange} from '../registry/view.js'
import {buildAttributes, dependentsHoldingOn} from './attributes.js'
import {type Clock, Debouncer, Lock, systemClock, type Wait} from './debounce.js'
import type {Identity} from './identity.js'
import type {Logger} from './log.js'
import type {ProvisionResult, Provisioner} from './provisioner.js'
import {HEALTH_DEFAULTS, HealthGate, type HealthTiming, type Probe, type ServiceHealth} from './health.js'
import {Registration} from './registration.js'
import {type InstalledRelease, releaseRunList} from '../release/fetch.js'

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
  /** Runs services' health checks; without it no service is health-gated (bench, unit tests). */
  healthProbe?: Probe
  healthTiming?: HealthTiming
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
  /** The digest of the release the node runs (instance:deploy), or null when it runs its nodes file. */
  release: string | null
  /** The rollout the node is taking part in and where it is (waiting, running…); added by the daemon. */
  deploy?: {deploy: string | null; phase: string | null}
  queue: {provisionPending: boolean; running: boolean; retryAt: string | null; decommissioning: string[]}
  /** Health checks of the services that have one: healthy (registered), counts, last failure. */
  checks: Record<string, ServiceHealth>
  /** When the node retired (its retire key: every service deregistered and drained), or null. */
  retired: string | null
}

const RETRY_BASE_MS = 5000
const VERIFY_DELAY_MS = 500
const RETRY_CAP_MS = 300_000

export class Agent {
  identity: Identity
  private readonly registration: Registration
  private readonly lock = new Lock()
  private verifyTimer: unknown
  private readonly debouncer: Debouncer
  private readonly clock: Clock
  private readonly metrics: AgentMetrics
  private provisionStatus: ProvisionStatus = initialProvision()
  private failures = 0
  private retryTimer: unknown
  private retryAt: number | undefined
  private unsubscribe: (() => void) | undefined
  private readonly waiters = new Set<() => void>()
  private decommissioning: string[] = []
  private stopped = false
  /** Set when the operator's retire key arrived: services never register again. */
  private retiring = false
  private retiredAt: string | undefined
  /** A deploy run ended without writing the node record: the deployer writes it (takeRecord). */
  private recordOwed = false
  private readonly since = new Date().toISOString()
  /** The release the node runs (instance:deploy), if it has switched to one: its run list and cookbooks. */
  private release: {dir: string; digest: string; runList: string | undefined} | undefined
  /** Health checks of the services that have one (absent: every service counts as healthy). */
  private readonly checks: HealthGate | undefined

  constructor(private readonly options: AgentOptions) {
    this.identity = options.identity
    this.clock = options.clock ?? systemClock
    this.metrics = options.metrics ?? noMetrics
    this.debouncer = new Debouncer(options.wait, () => this.provision('dependency').then(() => undefined), this.clock)
    this.registration = new Registration({
      project: options.project,
      ttlSeconds: options.ttlSeconds,
      store: options.store,
      log: options.log,
      clock: this.clock,
      nodeId: options.identity.node,
      node: () => this.nodeRecord(),
      service: (name) => this.serviceRecord(name),
      ready: (name) => this.checks?.ready(name) ?? true,
    })
    if (options.healthProbe !== undefined) {
      this.checks = new HealthGate({
        specs: () => this.identity.services.filter((s) => s.health_check !== undefined).map((s) => ({service: s.name, check: s.health_check as string, port: s.port})),
        address: () => this.identity.address,
        timing: options.healthTiming ?? HEALTH_DEFAULTS,
        probe: options.healthProbe,
        clock: this.clock,
        log: options.log,
        // Rising or falling changes what may be registered: write it now.
        changed: () => void this.registration.publish(),
      })
    }
  }

  get attributesFile(): string {
    return join(this.options.stateDir, 'attributes.json')
  }

  /**
   * From now on the node is what the release says (services, dependencies, dna, run list), not
   * its nodes file. Before start(): the release the node already runs or converges at boot.
   */
  useRelease(release: InstalledRelease): void {
    this.identity = identityFromRelease(this.identity, release)
    const runList = releaseRunList(release.manifest)
    this.release = {dir: release.dir, digest: release.digest, runList: runList === '' ? undefined : runList}
  }

  /**
   * The node record a deploy run left unwritten, for the deployer to write with the run's result;
   * undefined when there is none, or when more than the record must be written (new or withdrawn
   * services: the registration writes it all itself then).
   */
  takeRecord(): {key: string; value: string; lease: string} | undefined {
    if (!this.recordOwed) return undefined
    this.recordOwed = false
    // Stopping: the lease is being revoked, and a record on it would sink the result's write.
    if (this.stopped) return undefined
    const entry = this.registration.recordEntry()
    if (!entry) void this.registration.publish()
    return entry
  }

  /** The deployer's write of takeRecord()'s record landed at `revision`, or never will (undefined: written here instead). */
  recordWritten(revision: number | undefined): void {
    if (revision === undefined) void this.registration.publish()
    else this.registration.noteWrite(revision)
  }

  /** The lease holding this node's registration: a deploy slot is taken on it (src/agent/deployer.ts). */
  registryLease(): StoreLease | undefined {
    return this.registration.currentLease
  }

  get releaseDigest(): string | null {
    return this.release?.digest ?? null
  }

  /** Registers the node (not yet its services) and runs the boot provision. Rejects if etcd can't be reached. */
  async start(): Promise<void> {
    this.unsubscribe = this.options.feed.subscribe((change) => this.onChange(change))
    await this.registration.register()
    this.checks?.start()
    if (this.options.bootProvision === false) {
      if (!this.retiring) this.registration.add(this.identity.services.map((s) => s.name))
      await this.registration.publish()
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
    if (change.nodes.has(this.identity.node) || (change.services.size > 0 && [...this.registration.services].some((s) => change.services.has(s)))) this.checkOwnKeys()
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
    if (this.stopped || this.lock.busy) return
    if (this.registration.intact(this.options.feed.view) !== false) return
    this.options.log.warn('this node\'s registration was changed by another writer; writing it again')
    void this.registration.publish()
  }

  private nodeRecord(): NodeRecord {
    return {
      node: this.identity.node,
      group: this.identity.group,
      address: this.identity.address,
      services: [...this.registration.services].sort(),
      dependsOn: this.identity.dependsOn,
      provision: this.provisionStatus,
      since: this.since,
      ...(this.retiredAt === undefined ? {} : {retired: this.retiredAt}),
    }
  }

  private serviceRecord(name: string): ServiceRecord {
    const ref = this.identity.services.find((s) => s.name === name)
    const record: ServiceRecord = {node: this.identity.node, group: this.identity.group, address: this.identity.address, since: this.since}
    if (ref?.port !== undefined) record.port = ref.port
    return record
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
      // A deploy run's start is in its rollout status (`running`, written with its slot): its node
      // record is written once, with the outcome, beside the run (one registry write and one event
      // to every watcher fewer per node of a rollout).
      if (reason !== 'deploy') await this.registration.publish()
      this.options.log.info('provision started', {reason, revision, runList})
      const result = await this.runProvisioner(reason, revision, attributes, runList ?? this.release?.runList)
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
        // A converged run list means its services run: register them (after boot, or after a
        // config change or decommission whose first converge failed and was retried). A delete
        // recipe's run (runList) converges nothing new.
        if (runList === undefined && !this.retiring) this.registration.add(this.identity.services.map((s) => s.name))
      } else if (reason === 'deploy') {
        // Not retried on its own: a retry would run outside the rollout's slots, and the rollout
        // reports the failure (the next dependency change or deploy converges again).
        this.failures++
        const status = result.signal ?? `exit ${result.exitCode}`
        this.provisionStatus = {...this.provisionStatus, state: 'failed', ok: false, reason, startedAt, finishedAt, message: `${status}\n${result.tail}`.slice(0, 4000)}
        this.options.log.error('provision failed', {reason, revision, status, tail: result.tail})
      } else {
        const delay = this.scheduleRetry(reason, runList)
        const status = result.signal ?? `exit ${result.exitCode}`
        this.provisionStatus = {...this.provisionStatus, state: 'failed', ok: false, reason, startedAt, finishedAt, message: `${status}; retrying in ${Math.round(delay / 1000)} s\n${result.tail}`.slice(0, 4000)}
        this.options.log.error('provision failed', {reason, revision, status, retryInMs: delay, tail: result.tail})
      }
      // A deploy run's record goes with its result, in the deployer's transaction (takeRecord):
      // one registry write and one event to every watcher fewer per node of a rollout.
      if (reason === 'deploy') this.recordOwed = true
      else await this.registration.publish()
      return result
    })
  }

  /** Writes the attributes and runs the command; a failure of either is a failed run, never a crash. */
  private async runProvisioner(reason: ProvisionReason, revision: number, attributes: string, runList: string | undefined): Promise<ProvisionResult> {
    const started = Date.now()
    try {
      await this.options.writeFile(this.attributesFile, attributes)
      const releaseDir = this.release?.dir
      return await this.options.provisioner.run({reason, attributesFile: this.attributesFile, revision, ...(runList ? {runList} : {}), ...(releaseDir ? {releaseDir} : {})})
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
    await this.converge(next, 'config')
  }

  /**
   * instance:deploy, once the release is verified and current: services that left the run list are
   * deregistered, drained and deleted (the delete recipe from the new release's cookbooks), then
   * the release's run list converges with MUSTER_REASON=deploy. Resolves with that run's result.
   */
  async deploy(release: InstalledRelease): Promise<ProvisionResult> {
    const next = identityFromRelease(this.identity, release)
    const runList = releaseRunList(release.manifest)
    this.release = {dir: release.dir, digest: release.digest, runList: runList === '' ? undefined : runList}
    return (await this.converge(next, 'deploy')) as ProvisionResult
  }

  private async converge(next: Identity, reason: 'config' | 'deploy'): Promise<ProvisionResult | undefined> {
    const before = new Set(this.identity.services.map((s) => s.name))
    const after = new Set(next.services.map((s) => s.name))
    const removed = this.identity.services.filter((s) => !after.has(s.name))
    const added = next.services.filter((s) => !before.has(s.name))
    const dependsChanged = next.dependsOn.join(',') !== this.identity.dependsOn.join(',')
    this.identity = next
    if (removed.length === 0) {
      if (reason === 'config' && added.length === 0 && !dependsChanged) {
        await this.registration.publish()
        return undefined
      }
      return this.provision(reason)
    }
    const names = removed.map((s) => s.name)
    this.decommissioning = names
    try {
      const revision = await this.registration.remove(names)
      this.options.log.info('deregistered; waiting for dependents to let go', {services: names, revision, drainMs: this.options.drainMs})
      const holding = await this.waitForDependents(names, revision)
      if (holding.length > 0) this.options.log.warn('drain period over; dependents still holding on', {services: names, nodes: holding})
      for (const service of removed) {
        await this.provision('decommission', `recipe[${service.cookbook}::delete-${service.name}]`)
      }
      return await this.provision(reason === 'deploy' ? 'deploy' : 'decommission')
    } finally {
      this.decommissioning = []
    }
  }

  /**
   * The operator's retire key (a blue-green update replaces this node's ASG): deregister every
   * service, let dependents move over (up to drainMs), then say `retired` in the node's record,
   * which the CLI waits for before it removes the ASG. Unlike a decommission no delete recipe runs
   * (the instance is going away); unlike stop the node stays registered until its instance goes.
   * Services never register again: no provision re-adds them.
   */
  async retire(): Promise<void> {
    if (this.stopped || this.retiring) return
    this.retiring = true
    this.debouncer.stop()
    this.clearRetry()
    const names = [...this.registration.services]
    this.decommissioning = names
    try {
      if (names.length > 0) {
        const revision = await this.registration.remove(names)
        this.options.log.info('retiring: deregistered; waiting for dependents to let go', {services: names, revision, drainMs: this.options.drainMs})
        const holding = await this.waitForDependents(names, revision)
        if (holding.length > 0) this.options.log.warn('drain period over; dependents still holding on', {services: names, nodes: holding})
      }
    } finally {
      this.decommissioning = []
    }
    if (this.stopped) return
    this.retiredAt = new Date().toISOString()
    await this.registration.publish()
    this.options.log.info('retired: every service deregistered and drained', {services: names})
  }

  /** SIGTERM: deregister everything at once, let dependents let go (up to drainMs), stop. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.debouncer.stop()
    this.clearRetry()
    this.checks?.stop()
    if (this.verifyTimer !== undefined) this.clock.clearTimeout(this.verifyTimer)
    const offered = [...this.registration.services]
    const revision = await this.registration.close()
    if (revision !== undefined && offered.length > 0) {
      const holding = await this.waitForDependents(offered, revision)
      if (holding.length > 0) this.options.log.warn('drain period over; dependents still holding on', {nodes: holding})
    }
    this.unsubscribe?.()
    if (this.lock.busy) this.options.provisioner.cancel()
  }

  health(): AgentHealth {
    return {
      node: this.identity.node,
      group: this.identity.group,
      services: this.identity.services.map((s) => s.name),
      registered: [...this.registration.published].sort(),
      dependsOn: this.identity.dependsOn,
      registry: {connected: this.options.feed.connected && this.registration.leaseId !== null, endpoints: this.options.store.endpoints, revision: this.options.feed.view.revision, leaseId: this.registration.leaseId},
      provision: this.provisionStatus,
      release: this.releaseDigest,
      queue: {provisionPending: this.debouncer.pending, running: this.lock.busy, retryAt: this.retryAt === undefined ? null : new Date(this.retryAt).toISOString(), decommissioning: this.decommissioning},
      checks: this.checks?.status ?? {},
      retired: this.retiredAt ?? null,
    }
  }
}

/** The node as its release describes it: the nodes file on the node no longer says what it runs. */
export function identityFromRelease(current: Identity, release: InstalledRelease): Identity {
  const {manifest} = release
  return {
    ...current,
    services: manifest.agent.services.map((s) => ({name: s.name, cookbook: s.cookbook, recipe: `recipe[${s.cookbook}::${s.name}]`, ...(s.port === undefined ? {} : {port: s.port}), ...(s.health_check === undefined ? {} : {health_check: s.health_check})})),
    dependsOn: [...manifest.agent.dependsOn].sort(),
    dna: manifest.dna,
    dnaFile: join(release.dir, 'dna.json'),
  }
}
