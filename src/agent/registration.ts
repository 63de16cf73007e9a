// One node's keys in the registry: a lease kept alive (granted again after it is lost), the node's
// key claimed so that two agents with one node id never overwrite each other, every write and
// delete in order through one lock, and the check that what the registry holds is still what
// this node wrote. The agent says what the records are; this module only keeps them there.
import {UserError} from '../errors.js'
import {jitteredDelay, sleep} from '../lib/backoff.js'
import {nodeKey, serviceKey} from '../registry/keys.js'
import type {NodeRecord, ServiceRecord} from '../registry/records.js'
import type {RegistryStore, StoreLease} from '../registry/store.js'
import type {RegistryView} from '../registry/view.js'
import {type Clock, Lock} from './debounce.js'
import type {Logger} from './log.js'

export interface RegistrationOptions {
  project: string
  ttlSeconds: number
  store: RegistryStore
  log: Logger
  clock: Clock
  /** The node's id: fixed for the agent's life (a reload never changes it). */
  nodeId: string
  /** The node's record as it should be now. */
  node(): NodeRecord
  /** A service's record as it should be now. */
  service(name: string): ServiceRecord
  /** May the service be in the registry now (its health check passes)? Default: always. */
  ready?(name: string): boolean
}

export class Registration {
  private lease: StoreLease | undefined
  /** Every lease id this agent has held: a record on one of them is ours to take over. */
  private readonly leaseIds = new Set<string>()
  /** Has this agent ever owned its node key? Until it has, it must not delete anything. */
  private claimed = false
  private readonly registered = new Set<string>()
  /** The services whose keys the last completed write put in the registry (what /health reports). */
  private written: ReadonlySet<string> = new Set()
  /** Registry writes and deletes in order: a re-publish never lands after a deregistration. */
  private readonly writes = new Lock()
  /** Revision of the last write: the view must reach it before it can be judged. */
  private lastWrite = 0
  private repairing: Promise<void> | undefined
  private closed = false

  constructor(private readonly options: RegistrationOptions) {}

  /** The services registered (or about to be, on the next publish). */
  get services(): ReadonlySet<string> {
    return this.registered
  }

  /** The services actually in the registry as of this agent's last completed write. */
  get published(): ReadonlySet<string> {
    return this.written
  }

  get leaseId(): string | null {
    return this.lease?.id ?? null
  }

  /** The lease holding the node's keys now (undefined while it registers again). */
  get currentLease(): StoreLease | undefined {
    return this.lease
  }

  add(names: readonly string[]): void {
    for (const name of names) this.registered.add(name)
  }

  private get key(): string {
    return nodeKey(this.options.project, this.options.nodeId)
  }

  private serviceKey(name: string): string {
    return serviceKey(this.options.project, name, this.options.nodeId)
  }

  /** Grants a lease (once, or again after losing it) and writes every key on it. Throws on failure. */
  async register(): Promise<void> {
    if (!this.lease) {
      const lease = await this.options.store.grantLease(this.options.ttlSeconds)
      lease.onLost((error) => {
        if (this.lease !== lease || this.closed) return
        this.options.log.warn('registry lease lost; registering again under a new one', {error: error.message})
        this.lease = undefined
        void this.repair()
      })
      this.lease = lease
      this.leaseIds.add(lease.id)
    }
    await this.claim(this.lease)
    await this.writeAll(this.lease)
  }

  /**
   * Takes the node's key, or waits (up to TTL + 1 s, long enough for a crashed predecessor's lease
   * to expire) while another agent holds it; then refuses, touching nothing of the other's.
   */
  private async claim(lease: StoreLease): Promise<void> {
    const deadline = this.options.clock.now() + (this.options.ttlSeconds + 1) * 1000
    for (;;) {
      const result = await lease.claim(this.key, JSON.stringify(this.options.node()), this.leaseIds)
      if (result.ok) {
        this.claimed = true
        return
      }
      if (this.options.clock.now() >= deadline || this.closed) {
        throw new UserError(`node ${this.options.nodeId} is already registered by another agent (lease ${result.holder})`, {
          hint: 'Stop the other agent, or give this one another --node. A crashed agent\'s registration expires after its TTL.',
        })
      }
      this.options.log.warn('node id held by another lease; waiting for it to expire', {holder: result.holder})
      await sleep(500)
    }
  }

  /** The registered services that may be in the registry now (health-gated ones only while healthy). */
  private readyServices(): string[] {
    return [...this.registered].filter((name) => this.options.ready?.(name) ?? true).sort()
  }

  private writeAll(lease: StoreLease): Promise<void> {
    return this.writes.run(async () => {
      // `registered` is read inside the lock, so it is what the last deregistration left.
      let revision = await lease.put(this.key, JSON.stringify(this.options.node()))
      const names = this.readyServices()
      // A service whose health check fell since the last write leaves the registry now.
      const withheld = [...this.written].filter((name) => !names.includes(name))
      if (withheld.length > 0) revision = await this.options.store.deleteKeys(withheld.map((name) => this.serviceKey(name)))
      for (const name of names) {
        revision = await lease.put(this.serviceKey(name), JSON.stringify(this.options.service(name)))
      }
      this.lastWrite = Math.max(this.lastWrite, revision)
      this.written = new Set(names)
    })
  }

  /**
   * The node's record on its lease, for a caller to write in a transaction of its own (a deploy
   * run's result), when that is all a write would change now: no service to add or withdraw.
   * Undefined otherwise (then publish()).
   */
  recordEntry(): {key: string; value: string; lease: string} | undefined {
    const lease = this.lease
    if (!lease || this.closed || !this.claimed || this.writes.busy) return undefined
    const names = this.readyServices()
    if (names.length !== this.written.size || names.some((name) => !this.written.has(name))) return undefined
    return {key: this.key, value: JSON.stringify(this.options.node()), lease: lease.id}
  }

  /** A record from recordEntry() landed at `revision` (the view is judged against it from then on). */
  noteWrite(revision: number): void {
    this.lastWrite = Math.max(this.lastWrite, revision)
  }

  /** Writes the node's keys; on failure, repairs in the background (never deregisters). */
  async publish(): Promise<void> {
    if (this.closed) return
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

  /** Retries registration with backoff and jitter until it succeeds or the registration closes. */
  private repair(): Promise<void> {
    this.repairing ??= (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.register()
          this.options.log.info('registered in the registry', {leaseId: this.lease?.id})
          return
        } catch (error) {
          const delay = jitteredDelay(attempt, 250, 3000)
          this.options.log.warn('registry unreachable; keeping the last view and retrying', {error: (error as Error).message, retryInMs: delay})
          await sleep(delay)
        }
      }
    })().finally(() => {
      this.repairing = undefined
    })
    return this.repairing
  }

  /** Deregisters services (all at one revision) and rewrites the node's record; resolves with that revision. */
  async remove(names: readonly string[]): Promise<number> {
    for (const name of names) this.registered.delete(name)
    const revision = await this.deleteKeys(names, false)
    await this.publish()
    return revision
  }

  /** Deletes services' keys (and the node's, with `node`) at one revision, through the write lock. */
  private deleteKeys(services: readonly string[], node: boolean): Promise<number> {
    return this.writes.run(async () => {
      const revision = await this.options.store.deleteKeys([...services.map((name) => this.serviceKey(name)), ...(node ? [this.key] : [])])
      this.lastWrite = Math.max(this.lastWrite, revision)
      this.written = new Set([...this.written].filter((name) => !services.includes(name)))
      return revision
    })
  }

  /**
   * false when the view, once it has caught up with this agent's writes, no longer holds what this
   * node wrote (deleted, detached or changed by another writer); undefined while it can't be judged.
   */
  intact(view: RegistryView): boolean | undefined {
    if (this.closed || !this.claimed || this.writes.busy || view.revision < this.lastWrite) return undefined
    const want = this.options.node()
    const node = view.nodes.get(want.node)
    if (node === undefined || node.address !== want.address || node.group !== want.group) return false
    return this.readyServices().every((s) => {
      const record = view.services.get(s)?.get(want.node)
      const expected = this.options.service(s)
      return record !== undefined && record.address === expected.address && record.port === expected.port
    })
  }

  /**
   * Deregisters everything at once (one transaction, then the lease revoked). Resolves with the
   * revision of the delete, or undefined when there was nothing of ours or etcd is unreachable
   * (then the keys expire with the lease).
   */
  async close(): Promise<number | undefined> {
    this.closed = true
    const lease = this.lease
    this.lease = undefined
    if (!this.claimed) {
      // Never registered (or refused): the node's keys, if any, are another agent's.
      await lease?.revoke().catch(() => lease.release())
      return undefined
    }
    const offered = [...this.registered]
    try {
      const revision = await this.deleteKeys(offered, true)
      await lease?.revoke()
      this.options.log.info('deregistered', {revision, services: offered})
      return revision
    } catch (error) {
      lease?.release()
      this.options.log.warn('could not deregister; the registrations expire with the lease', {error: (error as Error).message, ttlSeconds: this.options.ttlSeconds})
      return undefined
    }
  }
}
