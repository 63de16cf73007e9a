// RegistryStore on etcd v3 through the etcd3 client: it keeps leases alive, resumes watches from
// their last revision after a reconnect and retries calls across endpoints. Here we only tune it
// for a node agent: short dials and call deadlines (a CLI must never hang on a dead registry), and
// a watch backoff capped at 2 s instead of 30 s so a restarted etcd is noticed within a TTL.
import {ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, retry} from 'cockatiel'
import {Etcd3, type ICompare, type IKeyValue, type IOptions, type IRequestOp, type ITxnRequest, type ITxnResponse, type Lease, Range, isRecoverableError} from 'etcd3'

import {UserError} from '../errors.js'
import type {RegistrySecurity} from './security.js'
import type {RegistryStore, Snapshot, StoreLease, Watch, WatchHandlers} from './store.js'
import type {KeyEvent} from './view.js'

export interface EtcdOptions {
  endpoints: readonly string[]
  /** Deadline of one unary call, in ms (default 5000). */
  callTimeoutMs?: number
  /** TLS and etcd user, for a locked registry. */
  security?: RegistrySecurity
}

export function openEtcd(options: EtcdOptions): RegistryStore {
  return new EtcdStore(new Etcd3(etcdClientOptions(options)), options.endpoints)
}

/** The client's options: endpoints, TLS, user, deadlines and fault handling tuned for muster. */
export function etcdClientOptions(options: EtcdOptions): IOptions {
  const callTimeout = options.callTimeoutMs ?? 5000
  const {tls, auth} = options.security ?? {}
  return {
    hosts: [...options.endpoints],
    // etcd3 types rootCertificate as required, but hands it to grpc's createSsl, where none means the
    // system's trusted CAs: what https:// with no --etcd-ca should mean.
    ...(tls ? {credentials: {rootCertificate: tls.ca as Buffer, ...(tls.cert ? {certChain: tls.cert} : {}), ...(tls.key ? {privateKey: tls.key} : {})}} : {}),
    ...(auth ? {auth: {username: auth.username, password: auth.password, callOptions: () => ({deadline: Date.now() + callTimeout})}} : {}),
    // Snapshots are paged (below), but one page of large values may still pass gRPC's 4 MiB default.
    grpcOptions: {'grpc.max_receive_message_length': 64 * 1024 * 1024},
    dialTimeout: Math.min(callTimeout, 3000),
    defaultCallOptions: (context) => (context.isStream ? {} : {deadline: Date.now() + callTimeout}),
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), {halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3)}),
      global: retry(handleWhen(isRecoverableError), {maxAttempts: Math.max(2, options.endpoints.length), backoff: new ExponentialBackoff({initialDelay: 50, maxDelay: 500})}),
      // Typed as a backoff state; the watch manager calls next() on it for each fresh sequence.
      watchBackoff: new ExponentialBackoff({initialDelay: 100, maxDelay: 2000}).next(),
    },
  }
}

const text = (b: Buffer | undefined): string => (b ? b.toString('utf8') : '')
const SNAPSHOT_PAGE = 500
const toEvent = (type: 'put' | 'delete', kv: IKeyValue): KeyEvent => ({type, key: text(kv.key), value: text(kv.value), lease: String(kv.lease ?? '0')})

class EtcdStore implements RegistryStore {
  constructor(private readonly client: Etcd3, readonly endpoints: readonly string[]) {}

  /**
   * The keys under `prefix`, read in pages at one revision: a registry of any size (or one that a
   * node has filled with large values) never exceeds a message limit, and the view is consistent.
   */
  async snapshot(prefix: string): Promise<Snapshot> {
    const all = Range.prefix(prefix)
    const events: KeyEvent[] = []
    let revision: string | undefined
    let start: Buffer = all.start
    for (;;) {
      let builder = this.client.getAll().inRange(new Range(start, all.end)).limit(SNAPSHOT_PAGE)
      if (revision !== undefined) builder = builder.revision(revision)
      const response = await builder.exec()
      revision ??= response.header.revision
      for (const kv of response.kvs) events.push(toEvent('put', kv))
      const last = response.kvs.at(-1)
      if (!response.more || !last) break
      start = Buffer.concat([last.key, Buffer.from([0])])
    }
    return {revision: Number(revision), events}
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    const watcher = await this.client.watch().prefix(prefix).startRevision(String(fromRevision)).create()
    let broken = false
    watcher.on('data', (response) => {
      const events: KeyEvent[] = response.events.map((e) => toEvent(e.type === 'Delete' ? 'delete' : 'put', e.kv))
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
    return new EtcdLease(this.client, lease, id)
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

  async commit(puts: ReadonlyArray<{key: string; value: string; lease?: string}>, deletes: readonly string[], release?: {key: string; lease: string}): Promise<number> {
    const ops = [...puts.map((p) => putOp(p.key, p.value, p.lease)), ...deletes.map(deleteOp)]
    // Without `release` there is nothing to compare and the success branch always runs.
    const compare: ICompare[] = release === undefined ? [] : [{key: Buffer.from(release.key), result: 'Equal', target: 'Lease', lease: release.lease}]
    const success = release === undefined ? ops : [...ops, deleteOp(release.key)]
    const response = await this.client.kv.txn({compare, success, failure: ops})
    return Number(response.header.revision)
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    const response = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value)).commit()
    return response.succeeded
  }

  async get(key: string): Promise<string | undefined> {
    const value = await this.client.get(key).string()
    return value ?? undefined
  }

  async putAll(entries: ReadonlyArray<readonly [string, string]>): Promise<number> {
    // An unconditional transaction: a deploy's request and its groups' release records go at one
    // revision, so no reader ever sees one without the other.
    const response = await this.client
      .if(entries[0]?.[0] ?? '\u0000', 'Version', '>', -1)
      .then(...entries.map(([key, value]) => this.client.put(key).value(value)))
      .commit()
    return Number(response.header.revision)
  }

  close(): void {
    this.client.close()
  }
}

class EtcdLease implements StoreLease {
  private lost = false

  constructor(private readonly client: Etcd3, private readonly lease: Lease, readonly id: string) {
    // Without a listener etcd3 would throw the 'lost' error as an unhandled EventEmitter error.
    lease.on('lost', () => {
      this.lost = true
    })
  }

  async put(key: string, value: string): Promise<number> {
    const response = await this.lease.put(key).value(value).exec()
    return Number(response.header.revision)
  }

  async claim(key: string, value: string, ours: ReadonlySet<string>): Promise<{ok: true} | {ok: false; holder: string}> {
    const response = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(value).lease(this.id))
      .else(this.client.get(key))
      .commit()
    if (response.succeeded) return {ok: true}
    const holder = String(response.responses[0]?.response_range?.kvs[0]?.lease ?? '0')
    // Deleted between the compare and now, or ours from before a reconnect: take it.
    if (holder === '0' || ours.has(holder) || holder === this.id) {
      await this.put(key, value)
      return {ok: true}
    }
    return {ok: false, holder}
  }

  async createFirstAbsent(keys: readonly string[], value: string, options: {unlessExists?: string; alsoPut?: {key: string; value: string}} = {}): Promise<number> {
    if (keys.length === 0) return -1
    const absent = (key: string): ICompare => ({key: Buffer.from(key), result: 'Equal', target: 'Create', create_revision: 0})
    const also = options.alsoPut ? [putOp(options.alsoPut.key, options.alsoPut.value)] : []
    // Level i: keys[i] (and the rollout's stop key) absent → write it; else level i + 1.
    const level = (i: number): ITxnRequest => ({
      compare: [absent(keys[i] as string), ...(options.unlessExists === undefined ? [] : [absent(options.unlessExists)])],
      success: [putOp(keys[i] as string, value, this.id), ...also],
      failure: i + 1 < keys.length ? [{request_txn: level(i + 1)}] : [],
    })
    let response: ITxnResponse | null | undefined = await this.client.kv.txn(level(0))
    for (let i = 0; response; i++) {
      if (response.succeeded) return i
      response = response.responses[0]?.response_txn
    }
    return -1
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

/** A raw transaction's put (on `lease` when given). */
function putOp(key: string, value: string, lease?: string): IRequestOp {
  return {request_put: {key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : {lease})}}
}

function deleteOp(key: string): IRequestOp {
  return {request_delete_range: {key: Buffer.from(key)}}
}
