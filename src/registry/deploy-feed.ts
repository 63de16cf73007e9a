// The rollouts as a node sees them: the requests under /muster/PROJECT/deploys/ and their progress
// under /muster/PROJECT/rollout/ (apart so that etcd's RBAC can let agents write only the latter),
// read from the registry feed's own watch of the project (follow) or, standalone, from a snapshot and a
// watch of each prefix (start), folded into one DeployState per deploy id (every value parsed defensively; a malformed one is
// ignored as if absent). Listeners hear which deploy ids changed.
//
// What a waiting node reads on every event (RolloutLine: free slots, failures so far, whether slots
// are still handed out, its place in line) is kept up to date per event at a cost that does not
// grow with the fleet: counts by state, the running nodes and a Fenwick tree over the targets in
// name order (a node's place among the waiting is one prefix sum). A full deployProgress() (every
// node's outcome) is computed only when asked for (the follower, a node that just failed), once per
// change. A rollout of 500 nodes makes some 3,000 events: recomputing and sorting the whole line on
// each was most of an agent's CPU during a rollout (bench/deploy.ts).
import {jitteredDelay, sleep} from '../lib/backoff.js'
import {type DeployNodeState, type DeployNodeStatus, type DeployProgress, type DeployRequest, type DeployState, type DeployStop, deployProgress, deploysPrefix, isLost, mayTakeSlot, parseDeployKey, rolloutsPrefix, parseDeployNodeStatus, parseDeployRequest, parseDeployStop} from './deploys.js'
import type {FeedLog, RegistryFeed} from './feed.js'
import type {RegistryStore, Watch} from './store.js'
import type {KeyEvent} from './view.js'

/** The waiting line of a rollout whose request has been read: targets in name order, a Fenwick tree of who waits. */
interface Line {
  index: Map<string, number>
  /** index → node */
  names: string[]
  /** Fenwick tree (1-based) over index: 1 where the node's status is waiting. */
  tree: Int32Array
  /** Fenwick tree over index: 1 where the node has not started (no status, or waiting). */
  pending: Int32Array
  counts: Record<DeployNodeState, number>
  /** Nodes whose status is running → the lease it names (a running node whose lease holds no slot is lost). */
  running: Map<string, string | null>
}

interface Rollout {
  request: DeployRequest | undefined
  statuses: Map<string, DeployNodeStatus>
  /** slot → the lease holding it */
  slots: Map<number, string>
  /** slot → how often its key changed: a node whose claim lost skips the slot until it changes again. */
  slotChanges: Map<number, number>
  stop: DeployStop | undefined
  /** The request's targets, once read: statuses of other nodes are not kept. */
  targets: Set<string> | undefined
  line: Line | undefined
  /** Over well past its deadline: its progress is no longer kept (memory stays bounded by live rollouts). */
  retired: boolean
  version: number
  cache: (RolloutLine & {version: number; halted: boolean}) | undefined
  progress: {version: number; halted: boolean; progress: DeployProgress} | undefined
}

/** What a waiting node reads on every event, computed once per change of the rollout. */
export interface RolloutLine {
  request: DeployRequest
  /** Failed nodes plus running nodes whose slot's lease is gone (lost), as deployProgress counts them. */
  failures: number
  /** Slots 0..n-1 not held. */
  free: number[]
  /** Whether slots are still handed out: no stop key, not past the deadline, failures within max-errors. */
  open: boolean
  deadline: number
  /** A node's place among the nodes reporting `waiting` (by name), or undefined when it is not waiting. */
  place(node: string): number | undefined
  /** How often slot k's key has changed (put or delete) so far. */
  slotChanges(slot: number): number
}

/** A rollout this long past its deadline is dropped from memory (nothing can start in it any more). */
const RETIRE_AFTER_MS = 3_600_000
/** Statuses kept for a rollout whose request has not been read (yet): forged keys cannot grow it without bound. */
const UNREQUESTED_CAP = 10_000

export type DeployListener = (ids: ReadonlySet<string>) => void

/** A waiting node of this process: woken when it is within `reach` places past the free slots. */
interface LineWaiter {
  reach: number
  wake(): void
}

export class DeployFeed {
  private readonly rollouts = new Map<string, Rollout>()
  private readonly listeners = new Set<DeployListener>()
  private readonly requestListeners = new Set<() => void>()
  /** A request was read or removed (or a snapshot taken) since the last emit. */
  private requestsChanged = false
  /** rollout → waiting node → its waiter (see waitInLine). */
  private readonly waiters = new Map<string, Map<string, LineWaiter>>()
  /** rollout → node not in line yet → its waiter (see waitForTurn). */
  private readonly turnWaiters = new Map<string, Map<string, LineWaiter>>()
  private watches: Watch[] = []
  private unfollow: (() => void) | undefined
  private stopped = false
  private resyncing: Promise<void> | undefined
  private idsCache: {at: number; ids: string[]} | undefined
  connected = false

  constructor(private readonly store: RegistryStore, readonly project: string, private readonly log: FeedLog) {}

  /** Standalone: its own snapshots and watches of deploys/ and rollout/. */
  async start(): Promise<void> {
    await this.sync()
  }

  /**
   * Reads the rollouts from a registry feed's snapshots and watch (call before feed.start()): one
   * watch per agent, not three, and a re-snapshot of the feed is one here too.
   */
  follow(feed: RegistryFeed): void {
    this.connected = true
    const unsubscribe = feed.subscribeEvents((events, snapshot) => {
      if (this.stopped) return
      if (!snapshot) {
        this.emit(this.apply(events))
        return
      }
      const before = new Set(this.rollouts.keys())
      this.rollouts.clear()
      this.invalidateIds()
      const changed = this.apply(events)
      for (const id of before) changed.add(id)
      this.emit(changed)
    })
    this.unfollow = unsubscribe
  }

  /**
   * Called after a change that may add or remove a rollout of ids(): a request read or deleted, a
   * fresh snapshot. A node between rollouts needs no more (src/agent/deployer.ts), so a process
   * that plays many nodes does not call each of them on every event of a rollout.
   */
  subscribeRequests(listener: () => void): () => void {
    this.requestListeners.add(listener)
    return () => this.requestListeners.delete(listener)
  }

  subscribe(listener: DeployListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Wakes a waiting node of this process when a change of rollout `id` may let it claim: it is
   * among the first free-slots + `reach` nodes waiting, or the rollout no longer hands slots out
   * (or is gone). A process that plays many nodes (bench/) then does work per change for the head
   * of the line only, not for every node that waits.
   */
  waitInLine(id: string, node: string, reach: number, wake: () => void): () => void {
    return register(this.waiters, id, node, {reach, wake})
  }

  /**
   * How many of rollout `id`'s targets before `node` (by name) have not started (no status yet,
   * or waiting): the node's place in the queue for the rollout's slots. Undefined when the
   * request is not read or does not target the node.
   */
  queuePlace(id: string, node: string): number | undefined {
    const r = this.rollouts.get(id)
    if (!r?.request || r.retired) return undefined
    r.line ??= indexLine(r.request, r.statuses)
    const i = r.line.index.get(node)
    return i === undefined ? undefined : prefixSum(r.line.pending, i)
  }

  /**
   * Wakes a node of this process that is not in line yet when its queuePlace may have come
   * within `within`, or the rollout no longer hands slots out (or is gone). A change wakes the
   * first `within` nodes not started, not the whole fleet.
   */
  waitForTurn(id: string, node: string, within: number, wake: () => void): () => void {
    return register(this.turnWaiters, id, node, {reach: within, wake})
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.unfollow?.()
    await this.closeWatches()
  }

  /** Ids of the rollouts whose request is present and valid, oldest first (ids sort by time). */
  ids(now = new Date()): string[] {
    // Read by every deployer on every event: recomputed when the rollouts change, and the retire
    // check (a clock reading per rollout) at most once a second.
    if (this.idsCache === undefined || now.getTime() - this.idsCache.at > 1000 || now.getTime() < this.idsCache.at) {
      for (const r of this.rollouts.values()) if (!r.retired && r.request && Date.parse(r.request.deadline) + RETIRE_AFTER_MS < now.getTime()) retire(r)
      this.idsCache = {at: now.getTime(), ids: [...this.rollouts].filter(([, r]) => r.request !== undefined && !r.retired).map(([id]) => id).sort()}
    }
    return this.idsCache.ids
  }

  state(id: string): DeployState | undefined {
    const r = this.rollouts.get(id)
    if (!r?.request || r.retired) return undefined
    return {request: r.request, statuses: r.statuses, slotLeases: new Set(r.slots.values()), stop: r.stop}
  }

  /** Slots 0..n-1 not held now. */
  freeSlots(id: string): number[] {
    const r = this.rollouts.get(id)
    if (!r?.request) return []
    const free: number[] = []
    for (let k = 0; k < r.request.n; k++) if (!r.slots.has(k)) free.push(k)
    return free
  }

  /** The rollout's progress (every node's outcome), computed once per change (and again when it passes its deadline). */
  progress(id: string, now: Date): DeployProgress | undefined {
    const r = this.rollouts.get(id)
    if (!r?.request || r.retired) return undefined
    const halted = now.getTime() > Date.parse(r.request.deadline)
    if (r.progress?.version !== r.version || r.progress.halted !== halted) {
      r.progress = {version: r.version, halted, progress: deployProgress(this.state(id) as DeployState, now)}
    }
    return r.progress.progress
  }

  /** A waiting node's place in line (its rank among nodes reporting `waiting`, by name), or undefined. */
  placeInLine(id: string, node: string, now: Date): number | undefined {
    return this.line(id, now)?.place(node)
  }

  /** The rollout as a waiting node reads it (shared by every agent of this process until it changes). */
  line(id: string, now: Date): RolloutLine | undefined {
    const r = this.rollouts.get(id)
    if (!r?.request || r.retired) return undefined
    // The common call: nothing changed since the last one (a number compare, no date parsing).
    if (r.cache?.version === r.version && r.cache.halted === now.getTime() > r.cache.deadline) return r.cache
    const deadline = Date.parse(r.request.deadline)
    const halted = now.getTime() > deadline
    if (r.cache?.version !== r.version || r.cache.halted !== halted) {
      const line = r.line ?? indexLine(r.request, r.statuses)
      r.line = line
      const leases = new Set(r.slots.values())
      let lost = 0
      for (const lease of line.running.values()) if (isLost(lease, leases)) lost++
      const failures = line.counts.failed + lost
      const request = r.request
      r.cache = {
        version: r.version,
        halted,
        request,
        failures,
        free: this.freeSlots(id),
        open: mayTakeSlot({request, stop: r.stop}, failures, now),
        deadline,
        place: (node) => {
          const i = line.index.get(node)
          return i === undefined || r.statuses.get(node)?.state !== 'waiting' ? undefined : prefixSum(line.tree, i)
        },
        slotChanges: (slot) => r.slotChanges.get(slot) ?? 0,
      }
    }
    return r.cache
  }

  private async closeWatches(): Promise<void> {
    const watches = this.watches
    this.watches = []
    await Promise.all(watches.map((w) => w.close()))
  }

  private async sync(): Promise<void> {
    // Requests first: progress keys read after them never name a request this view lacks.
    const prefixes = [deploysPrefix(this.project), rolloutsPrefix(this.project)]
    const snapshots = []
    for (const prefix of prefixes) snapshots.push(await this.store.snapshot(prefix))
    if (this.stopped) return
    const before = new Set(this.rollouts.keys())
    this.rollouts.clear()
    this.invalidateIds()
    const changed = this.apply(snapshots.flatMap((s) => s.events))
    for (const id of before) changed.add(id)
    for (const [i, prefix] of prefixes.entries()) {
      this.watches.push(await this.store.watch(prefix, (snapshots[i]?.revision ?? 0) + 1, {
        events: (events) => this.emit(this.apply(events)),
        broken: (error) => {
          this.log.warn('deploy watch cancelled; taking a fresh snapshot', {error: error.message})
          void this.resync()
        },
        connection: (connected) => {
          this.connected = connected
        },
      }))
    }
    this.connected = true
    this.emit(changed)
  }

  private resync(): Promise<void> {
    this.resyncing ??= (async () => {
      await this.closeWatches()
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.sync()
          return
        } catch (error) {
          this.connected = false
          await sleep(jitteredDelay(attempt, 200, 5000))
          this.log.warn('deploy snapshot failed; retrying', {error: (error as Error).message})
        }
      }
    })().finally(() => {
      this.resyncing = undefined
    })
    return this.resyncing
  }

  private apply(events: readonly KeyEvent[]): Set<string> {
    const changed = new Set<string>()
    for (const event of events) {
      const parsed = parseDeployKey(this.project, event.key)
      if (!parsed) continue
      let r = this.rollouts.get(parsed.id)
      if (!r) {
        if (event.type === 'delete') continue
        r = {request: undefined, statuses: new Map(), slots: new Map(), slotChanges: new Map(), stop: undefined, targets: undefined, line: undefined, retired: false, version: 0, cache: undefined, progress: undefined}
        this.rollouts.set(parsed.id, r)
        this.invalidateIds()
      }
      const put = event.type === 'put'
      switch (parsed.kind) {
        case 'request':
          // A request once read never changes under a node: a rewrite (by anyone) is ignored.
          if (put && r.request === undefined) {
            r.request = parseDeployRequest(parsed.id, event.value)
            if (r.request) {
              const targets = new Set(Object.values(r.request.targets).flat())
              r.targets = targets
              for (const node of [...r.statuses.keys()]) if (!targets.has(node)) r.statuses.delete(node)
              for (const slot of [...r.slots.keys()]) if (slot >= r.request.n) r.slots.delete(slot)
              if (Date.parse(r.request.deadline) + RETIRE_AFTER_MS < Date.now()) retire(r)
            }
            this.invalidateIds()
          }
          if (!put) {
            r.request = undefined
            r.line = undefined
            this.invalidateIds()
          }
          break
        case 'node': {
          if (r.retired || (put && r.targets !== undefined && !r.targets.has(parsed.node))) continue
          if (put && r.targets === undefined && r.statuses.size >= UNREQUESTED_CAP && !r.statuses.has(parsed.node)) continue
          const status = put ? parseDeployNodeStatus(parsed.node, event.value) : undefined
          if (r.line) track(r.line, parsed.node, r.statuses.get(parsed.node), status)
          if (status) r.statuses.set(parsed.node, status)
          else r.statuses.delete(parsed.node)
          break
        }
        case 'slot':
          if (r.retired || (put && r.request !== undefined && parsed.slot >= r.request.n)) continue
          // A slot counts only on a lease: a slot key without one would never come back.
          if (put && event.lease !== undefined && event.lease !== '0') r.slots.set(parsed.slot, event.lease)
          else if (put) r.slots.set(parsed.slot, '0')
          else r.slots.delete(parsed.slot)
          r.slotChanges.set(parsed.slot, (r.slotChanges.get(parsed.slot) ?? 0) + 1)
          break
        case 'stop':
          if (put) r.stop ??= parseDeployStop(event.value) ?? {reason: 'cancelled', at: new Date(0).toISOString(), by: 'unreadable stop key'}
          else r.stop = undefined
          break
      }
      r.version++
      changed.add(parsed.id)
    }
    return changed
  }

  private invalidateIds(): void {
    this.idsCache = undefined
    this.requestsChanged = true
  }

  private emit(ids: Set<string>): void {
    const gone: string[] = []
    for (const id of ids) {
      if (this.rollouts.get(id)?.retired) {
        ids.delete(id)
        gone.push(id)
      }
    }
    if (ids.size > 0) for (const listener of this.listeners) listener(ids)
    if (this.requestsChanged) {
      this.requestsChanged = false
      for (const listener of this.requestListeners) listener()
    }
    for (const id of [...ids, ...gone]) this.wakeHead(id)
  }

  private wakeHead(id: string): void {
    const waiters = this.waiters.get(id)
    const turns = this.turnWaiters.get(id)
    if (!waiters?.size && !turns?.size) return
    const line = this.line(id, new Date())
    const r = this.rollouts.get(id)
    if (!line || !line.open || !r?.line) {
      for (const waiter of [...(waiters?.values() ?? []), ...(turns?.values() ?? [])]) waiter.wake()
      return
    }
    // Queued nodes by their place among those not started; waiting ones by their place in line,
    // past the free slots.
    if (turns?.size) wakeFirst(r.line.pending, r.line.names, 0, turns)
    if (waiters?.size) wakeFirst(r.line.tree, r.line.names, line.free.length, waiters)
  }
}

/** Wakes each waiter whose node is among the first `base` + its reach set positions of `tree`. */
function wakeFirst(tree: Int32Array, names: readonly string[], base: number, waiters: ReadonlyMap<string, LineWaiter>): void {
  let reach = 0
  for (const waiter of waiters.values()) reach = Math.max(reach, waiter.reach)
  const head = Math.min(base + reach, prefixSum(tree, names.length))
  for (let k = 0; k < head; k++) {
    const node = names[kth(tree, k)]
    const waiter = node === undefined ? undefined : waiters.get(node)
    if (waiter && k < base + waiter.reach) waiter.wake()
  }
}

function register(map: Map<string, Map<string, LineWaiter>>, id: string, node: string, waiter: LineWaiter): () => void {
  let rollout = map.get(id)
  if (!rollout) map.set(id, (rollout = new Map()))
  rollout.set(node, waiter)
  return () => {
    if (rollout.get(node) !== waiter) return
    rollout.delete(node)
    if (rollout.size === 0 && map.get(id) === rollout) map.delete(id)
  }
}

function retire(r: Rollout): void {
  r.retired = true
  r.statuses.clear()
  r.slots.clear()
  r.slotChanges.clear()
  r.line = undefined
  r.cache = undefined
  r.progress = undefined
}

/** The waiting line from scratch (once, when the request is first read). */
function indexLine(request: DeployRequest, statuses: ReadonlyMap<string, DeployNodeStatus>): Line {
  const names = [...new Set(Object.values(request.targets).flat())].sort()
  // Every target pending to begin with: a Fenwick tree of ones has k & -k at k.
  const pending = new Int32Array(names.length + 1)
  for (let k = 1; k < pending.length; k++) pending[k] = k & -k
  const line: Line = {index: new Map(names.map((n, i) => [n, i])), names, tree: new Int32Array(names.length + 1), pending, counts: {waiting: 0, running: 0, ok: 0, failed: 0}, running: new Map()}
  for (const [node, status] of statuses) track(line, node, undefined, status)
  return line
}

/** Moves a targeted node from its old status to its new one in the line's counts, running set and tree. */
function track(line: Line, node: string, before: DeployNodeStatus | undefined, after: DeployNodeStatus | undefined): void {
  const i = line.index.get(node)
  if (i === undefined) return
  const started = (status: DeployNodeStatus | undefined): boolean => status !== undefined && status.state !== 'waiting'
  if (started(before) !== started(after)) addAt(line.pending, i, started(after) ? -1 : 1)
  if (before) {
    line.counts[before.state]--
    if (before.state === 'waiting') addAt(line.tree, i, -1)
    if (before.state === 'running') line.running.delete(node)
  }
  if (after) {
    line.counts[after.state]++
    if (after.state === 'waiting') addAt(line.tree, i, 1)
    if (after.state === 'running') line.running.set(node, after.lease)
  }
}

function addAt(tree: Int32Array, i: number, delta: number): void {
  for (let k = i + 1; k < tree.length; k += k & -k) tree[k] = (tree[k] as number) + delta
}

/** The position of the k-th (from 0) set position: k < the number set. */
function kth(tree: Int32Array, k: number): number {
  let pos = 0
  let rest = k + 1
  let step = 1
  while (step * 2 < tree.length) step *= 2
  for (; step > 0; step >>= 1) {
    const next = pos + step
    if (next < tree.length && (tree[next] as number) < rest) {
      pos = next
      rest -= tree[next] as number
    }
  }
  return pos
}

/** How many of positions 0..i-1 are set. */
function prefixSum(tree: Int32Array, i: number): number {
  let sum = 0
  for (let k = i; k > 0; k -= k & -k) sum += tree[k] as number
  return sum
}
