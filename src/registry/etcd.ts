// RegistryStore on etcd v3 through the etcd3 client: it keeps leases alive, resumes watches from
// their last revision after a reconnect and retries calls across endpoints. Here we only tune it
// for a node agent: short dials and call deadlines (a CLI must never hang on a dead registry), and
// a watch backoff capped at 2 s instead of 30 s so a restarted etcd is noticed within a TTL.
import {ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, retry} from 'cockatiel'
import {Etcd3, type IKeyValue, type Lease, isRecoverableError} from 'etcd3'

import {UserError} from '../errors.js'
import type {RegistryStore, Snapshot, StoreLease, Watch, WatchHandlers} from './store.js'
import type {KeyEvent} from './view.js'

export interface EtcdOptions {
  endpoints: readonly string[]
  /** Deadline of one unary call, in ms (default 5000). */
  callTimeoutMs?: number
}

/** "http://a:2379,http://b:2379" → checked URLs. */
export function parseEndpoints(text: string, source: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  if (list.length === 0) throw new UserError(`${source} names no etcd endpoint`, {hint: 'Give --etcd http://HOST:2379[,http://HOST2:2379] or set MUSTER_ETCD_ENDPOINTS.'})
  for (const url of list) {
    let parsed: URL | undefined
    try {
      parsed = new URL(url)
    } catch {
      parsed = undefined
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.port === '' || parsed.pathname !== '/') {
      throw new UserError(`${source}: ${JSON.stringify(url)} is not an etcd endpoint`, {hint: 'Write each endpoint as http://HOST:PORT (https:// for TLS), separated by commas.'})
    }
  }
  return list
}

export function openEtcd(options: EtcdOptions): RegistryStore {
  const callTimeout = options.callTimeoutMs ?? 5000
  const client = new Etcd3({
    hosts: [...options.endpoints],
    dialTimeout: Math.min(callTimeout, 3000),
    defaultCallOptions: (context) => (context.isStream ? {} : {deadline: Date.now() + callTimeout}),
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), {halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3)}),
      global: retry(handleWhen(isRecoverableError), {maxAttempts: Math.max(2, options.endpoints.length), backoff: new ExponentialBackoff({initialDelay: 50, maxDelay: 500})}),
      // Typed as a backoff state; the watch manager calls next() on it for each fresh sequence.
      watchBackoff: new ExponentialBackoff({initialDelay: 100, maxDelay: 2000}).next(),
    },
  })
  return new EtcdStore(client, options.endpoints)
}

const text = (b: Buffer | undefined): string => (b ? b.toString('utf8') : '')

class EtcdStore implements RegistryStore {
  constructor(private readonly client: Etcd3, readonly endpoints: readonly string[]) {}

  async snapshot(prefix: string): Promise<Snapshot> {
    const response = await this.client.getAll().prefix(prefix).exec()
    return {
      revision: Number(response.header.revision),
      events: response.kvs.map((kv: IKeyValue) => ({type: 'put' as const, key: text(kv.key), value: text(kv.value)})),
    }
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    const watcher = await this.client.watch().prefix(prefix).startRevision(String(fromRevision)).create()
    let broken = false
    watcher.on('data', (response) => {
      const events: KeyEvent[] = response.events.map((e) => ({type: e.type === 'Delete' ? 'delete' : 'put', key: text(e.kv.key), value: text(e.kv.value)}))
      if (events.length > 0) handlers.events(events, Number(response.header.revision))
    })
    watcher.on('disconnected', (error: Error) => handlers.connection(false, error))
    watcher.on('connected', () => handlers.connection(true))
    // etcd cancels a watch whose start revision has been compacted away; etcd3 reports that as an
    // error on the watcher and stops it. The caller re-snapshots.
    watcher.on('error', (error: Error) => {
      if (broken) return
      broken = true
      handlers.broken(error)
    })
    return {
      close: async () => {
        // A watch etcd cancelled (its revision compacted away) is already dropped by etcd3:
        // cancelling it again would wait forever for an 'end' that never comes.
        if (broken) return
        broken = true
        await Promise.resolve()
          .then(() => watcher.cancel())
          .catch(() => undefined)
      },
    }
  }

  async grantLease(ttlSeconds: number): Promise<StoreLease> {
    const lease = this.client.lease(ttlSeconds, {autoKeepAlive: true})
    // The grant is lazy in etcd3; force it so a dead registry fails here, not on the first put.
    const id = await lease.grant()
    return new EtcdLease(lease, id)
  }

  async deleteKeys(keys: readonly string[]): Promise<number> {
    // A transaction with no conditions: every key goes at the same revision, which is what
    // dependents must have provisioned past before a decommission may proceed.
    const response = await this.client
      .if(keys[0] ?? '\u0000', 'Version', '>', -1)
      .then(...keys.map((key) => this.client.delete().key(key)))
      .commit()
    return Number(response.header.revision)
  }

  async put(key: string, value: string): Promise<number> {
    const response = await this.client.put(key).value(value).exec()
    return Number(response.header.revision)
  }

  close(): void {
    this.client.close()
  }
}

class EtcdLease implements StoreLease {
  private lost = false

  constructor(private readonly lease: Lease, readonly id: string) {
    // Without a listener etcd3 would throw the 'lost' error as an unhandled EventEmitter error.
    lease.on('lost', () => {
      this.lost = true
    })
  }

  async put(key: string, value: string): Promise<number> {
    const response = await this.lease.put(key).value(value).exec()
    return Number(response.header.revision)
  }

  onLost(handler: (error: Error) => void): void {
    this.lease.on('lost', handler)
  }

  async revoke(): Promise<void> {
    if (this.lost) return
    await this.lease.revoke()
  }

  release(): void {
    this.lease.release()
  }
}
