// The registry's storage as the rest of muster sees it: a small interface over etcd, so the agent's
// logic is testable without etcd and the etcd client is tested against a real etcd. Only this
// module and etcd.ts know the client library.
import type {KeyEvent} from './view.js'

export interface Snapshot {
  revision: number
  events: KeyEvent[]
}

export interface WatchHandlers {
  /** Events of one watch response, in order, with the response's revision. */
  events(events: KeyEvent[], revision: number): void
  /** The watch cannot continue from its revision (compacted, cancelled): take a new snapshot. */
  broken(error: Error): void
  /** The stream to etcd dropped or came back; the client resumes from the last revision itself. */
  connection(connected: boolean, error?: Error): void
}

export interface Watch {
  close(): Promise<void>
}

export interface StoreLease {
  readonly id: string
  /** Writes key=value on this lease; resolves with the revision of the write. */
  put(key: string, value: string): Promise<number>
  /**
   * Writes key=value on this lease only if the key is absent or already held by one of `ours`
   * (lease ids this process held): two agents given the same node id must not overwrite, and
   * later delete, each other's registration. Resolves with the lease holding the key otherwise.
   */
  claim(key: string, value: string, ours: ReadonlySet<string>): Promise<{ok: true} | {ok: false; holder: string}>
  /**
   * Writes value on this lease at the first of `keys` that is absent, when `unlessExists` (if
   * given) is absent too, in one transaction (nested: each key tried only if those before it
   * exist): a deploy slot is taken this way, never after the rollout's stop key was written.
   * `alsoPut` (no lease) is written in the same transaction when one is: a node's `running`
   * status lands with its slot, one round trip. Resolves with the index of the key written, or -1.
   */
  createFirstAbsent(keys: readonly string[], value: string, options?: {unlessExists?: string; alsoPut?: {key: string; value: string}}): Promise<number>
  /** Called once if etcd says the lease is gone (expired during an outage, or revoked elsewhere). */
  onLost(handler: (error: Error) => void): void
  /** Deletes every key on the lease at once. */
  revoke(): Promise<void>
  /** Stops keeping the lease alive without revoking it (its keys expire after the TTL). */
  release(): void
}

export interface RegistryStore {
  readonly endpoints: readonly string[]
  snapshot(prefix: string): Promise<Snapshot>
  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch>
  grantLease(ttlSeconds: number): Promise<StoreLease>
  /** Deletes keys in one transaction (all go at one revision); resolves with that revision. */
  deleteKeys(keys: readonly string[]): Promise<number>
  put(key: string, value: string): Promise<number>
  /**
   * Puts and deletes in one transaction, at one revision; resolves with it. A put may name a lease
   * (etcd then refuses the whole transaction, and this rejects, if that lease is gone). `release`
   * is deleted too, in the same transaction, only while that lease still holds it (a deploy slot
   * whose lease expired may be another node's by now).
   */
  commit(puts: ReadonlyArray<{key: string; value: string; lease?: string}>, deletes: readonly string[], release?: {key: string; lease: string}): Promise<number>
  /** Writes key=value (no lease) only if the key is absent; resolves with whether it was written. */
  createIfAbsent(key: string, value: string): Promise<boolean>
  /** One key's value, or undefined when absent. */
  get(key: string): Promise<string | undefined>
  /** Writes every key=value (no lease) in one transaction: all or none, at one revision. */
  putAll(entries: ReadonlyArray<readonly [string, string]>): Promise<number>
  close(): void
}
