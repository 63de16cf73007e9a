// The registry as a stream of views: one snapshot, then a watch from the snapshot's revision.
// When etcd cancels the watch (its revision was compacted away) or it cannot be re-created, the
// feed takes a fresh snapshot and reports the difference against its last view, so a change made
// while the watch was down is still seen. While etcd is unreachable the last view stays as it was:
// nobody downstream ever sees a partial or empty registry because of an outage.
import {jitteredDelay, sleep} from '../lib/backoff.js'
import {projectPrefix} from './keys.js'
import type {RegistryStore, Watch} from './store.js'
import {type KeyEvent, RegistryView, type ViewChange} from './view.js'

export type FeedListener = (change: ViewChange, view: RegistryView) => void
/** Every key event under the project, as read: a whole snapshot (replacing what was known), or a watch batch. */
export type FeedEventListener = (events: readonly KeyEvent[], snapshot: boolean) => void

export interface FeedLog {
  warn(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
}

export interface FeedStats {
  events: number
  reconnects: number
  resyncs: number
  rejected: number
}

export class RegistryFeed {
  readonly view: RegistryView
  readonly stats: FeedStats = {events: 0, reconnects: 0, resyncs: 0, rejected: 0}
  connected = false
  private readonly listeners = new Set<FeedListener>()
  private readonly eventListeners = new Set<FeedEventListener>()
  private watch: Watch | undefined
  private stopped = false
  private resyncing: Promise<void> | undefined

  constructor(private readonly store: RegistryStore, readonly project: string, private readonly log: FeedLog) {
    this.view = new RegistryView(project)
  }

  /** First snapshot and watch; rejects when etcd cannot be reached (the caller decides what that means). */
  async start(): Promise<void> {
    await this.sync()
  }

  /** Snapshot, diff against the view, watch from the snapshot's revision: start and resync alike. */
  private async sync(): Promise<void> {
    const snapshot = await this.store.snapshot(projectPrefix(this.project))
    if (this.stopped) return
    for (const listener of this.eventListeners) listener(snapshot.events, true)
    this.emit(this.view.replace(snapshot.events, snapshot.revision))
    await this.openWatch(snapshot.revision + 1)
    this.connected = true
  }

  /** The raw events (the deploy feed reads the rollouts' keys from this one watch). */
  subscribeEvents(listener: FeedEventListener): () => void {
    this.eventListeners.add(listener)
    return () => this.eventListeners.delete(listener)
  }

  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.watch?.close()
    this.watch = undefined
  }

  private async openWatch(fromRevision: number): Promise<void> {
    this.watch = await this.store.watch(projectPrefix(this.project), fromRevision, {
      events: (events, revision) => {
        this.stats.events += events.length
        for (const listener of this.eventListeners) listener(events, false)
        this.emit(this.view.apply(events, revision))
      },
      broken: (error) => {
        this.log.warn('registry watch cancelled; taking a fresh snapshot', {error: error.message})
        void this.resync()
      },
      connection: (connected, error) => {
        if (connected === this.connected) return
        this.connected = connected
        if (connected) {
          this.stats.reconnects++
          this.log.info('registry connection restored')
        } else {
          this.log.warn('registry connection lost; keeping the last view', {error: error?.message})
        }
      },
    })
  }

  /** Snapshot again and diff, retrying with backoff until etcd answers or the feed stops. */
  resync(): Promise<void> {
    this.resyncing ??= this.resyncLoop().finally(() => {
      this.resyncing = undefined
    })
    return this.resyncing
  }

  private async resyncLoop(): Promise<void> {
    const old = this.watch
    this.watch = undefined
    await old?.close()
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.sync()
        this.stats.resyncs++
        return
      } catch (error) {
        this.connected = false
        const delay = jitteredDelay(attempt, 200, 5000)
        this.log.warn('registry snapshot failed; retrying', {error: (error as Error).message, retryInMs: delay})
        await sleep(delay)
      }
    }
  }

  private emit(change: ViewChange): void {
    this.stats.rejected += change.rejected
    if (change.services.size === 0 && change.nodes.size === 0) return
    for (const listener of this.listeners) listener(change, this.view)
  }
}
