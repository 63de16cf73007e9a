// The rollouts as a node sees them: the requests under /muster/PROJECT/deploys/ and their progress
// under /muster/PROJECT/rollout/ (apart so that etcd's RBAC can let agents write only the latter),
// read from the registry feed's own watch of the project (follow) or, standalone, from a snapshot and a
// watch of each prefix (start), folded into one DeployState per deploy id (every value parsed defensively; a malformed one is
// ignored as if absent). Listeners hear which deploy ids changed. The progress of a rollout and
// the order of its waiting nodes are computed once per change and shared, so many agents in one
// process (bench/) can read them on every event.
import {jitteredDelay, sleep} from '../lib/backoff.js'
import {type DeployNodeStatus, type DeployProgress, type DeployRequest, type DeployState, type DeployStop, deployProgress, deploysPrefix, mayTakeSlot, parseDeployKey, rolloutsPrefix, parseDeployNodeStatus, parseDeployRequest, parseDeployStop} from './deploys.js'
import type {FeedLog, RegistryFeed} from './feed.js'
import type {RegistryStore, Watch} from './store.js'
import type {KeyEvent} from './view.js'

interface Rollout {
  request: DeployRequest | undefined
  statuses: Map<string, DeployNodeStatus>
  /** slot → the lease holding it */
  slots: Map<number, string>
  stop: DeployStop | undefined
  /** The request's targets, once read: statuses of other nodes are not kept. */
  targets: Set<string> | undefined
  /** Over well past its deadline: its progress is no longer kept (memory stays bounded by live rollouts). */
  retired: boolean
  version: number
  cache: (RolloutLine & {version: number; halted: boolean}) | undefined
}

/** What a waiting node reads on every event, computed once per change of the rollout. */
export interface RolloutLine {
  request: DeployRequest
  progress: DeployProgress
  /** node → its place among the nodes reporting `waiting`, by name */
  waiting: Map<string, number>
  /** Slots 0..n-1 not held. */
  free: number[]
  /** Whether slots are still handed out (mayTakeSlot): no stop key, not past the deadline, failures within max-errors. */
  open: boolean
  deadline: number
}

/** A rollout this long past its deadline is dropped from memory (nothing can start in it any more). */
const RETIRE_AFTER_MS = 3_600_000
/** Statuses kept for a rollout whose request has not been read (yet): forged keys cannot grow it without bound. */
const UNREQUESTED_CAP = 10_000

export type DeployListener = (ids: ReadonlySet<string>) => void

export class DeployFeed {
  private readonly rollouts = new Map<string, Rollout>()
  private readonly listeners = new Set<DeployListener>()
  private watches: Watch[] = []
  private unfollow: (() => void) | undefined
  private stopped = false
  private resyncing: Promise<void> | undefined
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
      const changed = this.apply(events)
      for (const id of before) changed.add(id)
      this.emit(changed)
    })
    this.unfollow = unsubscribe
  }

  subscribe(listener: DeployListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.unfollow?.()
    await this.closeWatches()
  }

  /** Ids of the rollouts whose request is present and valid, oldest first (ids sort by time). */
  ids(now = new Date()): string[] {
    for (const r of this.rollouts.values()) if (!r.retired && r.request && Date.parse(r.request.deadline) + RETIRE_AFTER_MS < now.getTime()) retire(r)
    return [...this.rollouts].filter(([, r]) => r.request !== undefined && !r.retired).map(([id]) => id).sort()
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

  /** The rollout's progress, computed once per change (and again when it passes its deadline). */
  progress(id: string, now: Date): DeployProgress | undefined {
    return this.cached(id, now)?.progress
  }

  /** A waiting node's place in line (its rank among nodes reporting `waiting`, by name), or undefined. */
  placeInLine(id: string, node: string, now: Date): number | undefined {
    return this.cached(id, now)?.waiting.get(node)
  }

  /** The rollout as a waiting node reads it (shared by every agent of this process until it changes). */
  line(id: string, now: Date): RolloutLine | undefined {
    return this.cached(id, now)
  }

  private cached(id: string, now: Date): Rollout['cache'] {
    const r = this.rollouts.get(id)
    if (!r?.request || r.retired) return undefined
    const deadline = Date.parse(r.request.deadline)
    const halted = now.getTime() > deadline
    if (r.cache?.version !== r.version || r.cache.halted !== halted) {
      const state = this.state(id) as DeployState
      const progress = deployProgress(state, now)
      const waiting = progress.nodes.filter((n) => n.status?.state === 'waiting').map((n) => n.node).sort()
      r.cache = {version: r.version, halted, request: r.request, progress, waiting: new Map(waiting.map((node, i) => [node, i])), free: this.freeSlots(id), open: mayTakeSlot(progress, state, now), deadline}
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
        r = {request: undefined, statuses: new Map(), slots: new Map(), stop: undefined, targets: undefined, retired: false, version: 0, cache: undefined}
        this.rollouts.set(parsed.id, r)
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
          }
          if (!put) r.request = undefined
          break
        case 'node': {
          if (r.retired || (put && r.targets !== undefined && !r.targets.has(parsed.node))) continue
          if (put && r.targets === undefined && r.statuses.size >= UNREQUESTED_CAP && !r.statuses.has(parsed.node)) continue
          const status = put ? parseDeployNodeStatus(parsed.node, event.value) : undefined
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

  private emit(ids: Set<string>): void {
    for (const id of ids) if (this.rollouts.get(id)?.retired) ids.delete(id)
    if (ids.size === 0) return
    for (const listener of this.listeners) listener(ids)
  }
}

function retire(r: Rollout): void {
  r.retired = true
  r.statuses.clear()
  r.slots.clear()
  r.cache = undefined
}
