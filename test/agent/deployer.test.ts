// How a waiting node claims a slot (src/agent/deployer.ts), over a registry held in memory with
// etcd's transaction rules and a clock the test moves: the head of the line claims a freed slot
// with one transaction, a node just past the free slots lets the head go first, and a claim that
// lost skips that slot until its key changes. The protocol end to end (real etcd, agent
// processes) is in test/integration/agent-deploy.test.ts.
import {expect} from 'chai'

import {Deployer} from '../../src/agent/deployer.js'
import type {Clock} from '../../src/agent/debounce.js'
import {silentLogger} from '../../src/agent/log.js'
import {DeployFeed} from '../../src/registry/deploy-feed.js'
import {type DeployRequest, deployKey, newDeployId, rolloutNodeKey, rolloutSlotKey} from '../../src/registry/deploys.js'
import type {RegistryStore, Snapshot, StoreLease, WatchHandlers} from '../../src/registry/store.js'
import type {KeyEvent} from '../../src/registry/view.js'
import type {ReleaseBucket} from '../../src/release/bucket.js'
import {makeTempDir, removeDir, waitUntil} from '../support/process.js'
import {buildRelease} from '../support/release.js'

const P = 'p'
const BUCKET = 'bucket-1'

/** A registry in memory: puts, transactions and leases as etcd applies them; watchers hear each revision. */
class MemoryEtcd {
  readonly keys = new Map<string, {value: string; lease: string}>()
  private readonly watchers: Array<{prefix: string; handlers: WatchHandlers}> = []
  private revision = 1
  private leases = 0
  /** Every slot claim tried: [slot key, lease]. */
  readonly claims: Array<[string, string]> = []
  /** Claim transactions. */
  claimTxns = 0

  /** Writes without telling any watcher: a change the nodes have not seen yet. */
  quietPut(key: string, value: string, lease = '0'): void {
    this.keys.set(key, {value, lease})
  }

  apply(events: KeyEvent[]): void {
    this.revision++
    for (const e of events) {
      if (e.type === 'put') this.keys.set(e.key, {value: e.value, lease: e.lease ?? '0'})
      else this.keys.delete(e.key)
    }
    const revision = this.revision
    // Delivered later, as a watch response is.
    setImmediate(() => {
      for (const w of this.watchers) {
        const mine = events.filter((e) => e.key.startsWith(w.prefix))
        if (mine.length > 0) w.handlers.events(mine, revision)
      }
    })
  }

  /** A lease, as a node's registration holds one. */
  lease(): StoreLease {
    const put = (key: string, value: string, leaseId = '0'): KeyEvent => ({type: 'put', key, value, lease: leaseId})
    const id = String(++this.leases)
    return {
      id,
      put: async (key, value) => {
        this.apply([put(key, value, id)])
        return this.revision
      },
      claim: async () => ({ok: true}),
      createFirstAbsent: async (keys, value, options = {}) => {
        this.claimTxns++
        for (const [i, key] of keys.entries()) {
          this.claims.push([key, id])
          if (this.keys.has(key) || (options.unlessExists !== undefined && this.keys.has(options.unlessExists))) continue
          this.apply([put(key, value, id), ...(options.alsoPut ? [put(options.alsoPut.key, options.alsoPut.value)] : [])])
          return i
        }
        return -1
      },
      onLost: () => undefined,
      revoke: async () => {
        const gone = [...this.keys].filter(([, v]) => v.lease === id).map(([key]): KeyEvent => ({type: 'delete', key, value: '', lease: '0'}))
        if (gone.length > 0) this.apply(gone)
      },
      release: () => undefined,
    }
  }

  store(): RegistryStore {
    const put = (key: string, value: string, lease = '0'): KeyEvent => ({type: 'put', key, value, lease})
    return {
      endpoints: [],
      snapshot: async (prefix: string): Promise<Snapshot> => ({revision: this.revision, events: [...this.keys].filter(([k]) => k.startsWith(prefix)).map(([key, v]) => put(key, v.value, v.lease))}),
      watch: async (prefix: string, _from: number, handlers: WatchHandlers) => {
        this.watchers.push({prefix, handlers})
        return {close: async () => undefined}
      },
      grantLease: async () => this.lease(),
      put: async (key: string, value: string) => {
        this.apply([put(key, value)])
        return this.revision
      },
      deleteKeys: async (keys: readonly string[]) => {
        this.apply(keys.map((key): KeyEvent => ({type: 'delete', key, value: '', lease: '0'})))
        return this.revision
      },
      commit: async (puts: ReadonlyArray<{key: string; value: string; lease?: string}>, deletes: readonly string[], release?: {key: string; lease: string}) => {
        const held = release !== undefined && this.keys.get(release.key)?.lease === release.lease ? [release.key] : []
        this.apply([...puts.map((p) => put(p.key, p.value, p.lease)), ...[...deletes, ...held].map((key): KeyEvent => ({type: 'delete', key, value: '', lease: '0'}))])
        return this.revision
      },
      createIfAbsent: async (key: string, value: string) => {
        if (this.keys.has(key)) return false
        this.apply([put(key, value)])
        return true
      },
      get: async (key: string) => this.keys.get(key)?.value,
    } as unknown as RegistryStore
  }
}

/** A clock whose timers fire only when the test moves it. */
class ManualClock implements Clock {
  private t = Date.now()
  private timers: Array<{at: number; fn: () => void; id: number}> = []
  private ids = 0
  now = (): number => this.t
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.ids
    this.timers.push({at: this.t + ms, fn, id})
    return id
  }

  clearTimeout = (handle: unknown): void => {
    this.timers = this.timers.filter((t) => t.id !== handle)
  }

  advance(ms: number): void {
    this.t += ms
    const due = this.timers.filter((t) => t.at <= this.t)
    this.timers = this.timers.filter((t) => t.at > this.t)
    for (const t of due) t.fn()
  }
}

const status = (node: string, state: string): string => JSON.stringify({node, group: 'web', state, startedAt: null, finishedAt: null, message: null, lease: null})
const settle = () => new Promise((resolve) => setTimeout(resolve, 20))

describe('Deployer: claiming a slot', function () {
  let dir: string
  let etcd: MemoryEtcd
  let feed: DeployFeed
  let deployers: Deployer[]
  let provisioned: string[]
  /** The revision each node's record landed at with its result (recordWritten). */
  let recordsWritten: Map<string, number | undefined>
  let openBucket: (bucket: string) => ReleaseBucket
  /** Nodes' reads of the release manifest, in order (the bucket is shared: counted by stateDir below). */
  let fetches: number
  let request: (targets: string[], n: number, now?: number) => Promise<string>

  beforeEach(async function () {
    dir = makeTempDir('deployer')
    etcd = new MemoryEtcd()
    const release = await buildRelease(BUCKET, {project: P, group: 'web', runList: ['recipe[app]'], cookbooks: null})
    openBucket = (bucket) => ({
      bucket,
      get: async (key) => {
        fetches++
        if (key !== release.manifestKey) throw new Error(`no ${key}`)
        return release.bytes
      },
      exists: async () => true,
      put: async () => undefined,
    })
    request = async (targets, n, now = Date.now()) => {
      const id = newDeployId(new Date(now))
      const value: DeployRequest = {id, groups: ['web'], n, maxErrors: 0, releases: {web: release.ref}, targets: {web: targets}, requestedAt: new Date(now).toISOString(), requestedBy: 't', deadline: new Date(now + 600_000).toISOString()}
      etcd.apply([{type: 'put', key: deployKey(P, id), value: JSON.stringify(value), lease: '0'}])
      return id
    }
    fetches = 0
    feed = new DeployFeed(etcd.store(), P, silentLogger)
    await feed.start()
    deployers = []
    provisioned = []
    recordsWritten = new Map()
  })

  afterEach(async function () {
    await Promise.all(deployers.map((d) => d.stop()))
    await feed.stop()
    removeDir(dir)
  })

  const start = (node: string, clock?: Clock): Deployer => {
    // The node's registration lease, which its slot is taken on.
    const lease = etcd.lease()
    const target = {
      deploy: async () => {
        provisioned.push(node)
        return {ok: true, exitCode: 0, signal: null, tail: '', durationMs: 1}
      },
      registryLease: () => lease,
      // What the agent's run left unwritten: its node record, written with the result.
      takeRecord: () => ({key: `/muster/${P}/nodes/${node}`, value: `record of ${node}`, lease: lease.id}),
      recordWritten: (revision: number | undefined) => {
        recordsWritten.set(node, revision)
      },
    }
    const deployer = new Deployer({project: P, node, group: 'web', stateDir: `${dir}/${node}`, store: etcd.store(), feed, target, log: silentLogger, fetch: {openBucket}, ...(clock ? {clock} : {})})
    deployer.start()
    deployers.push(deployer)
    return deployer
  }
  const statusOf = (id: string, node: string): string | undefined => feed.state(id)?.statuses.get(node)?.state

  it('the head of the line takes a free slot with one transaction, reports ok and gives the slot back', async function () {
    const id = await request(['web-1', 'web-2', 'web-3'], 1)
    start('web-1')
    await waitUntil('web-1 ok', async () => statusOf(id, 'web-1') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(etcd.claims).to.deep.equal([[rolloutSlotKey(P, id, 0), '1']])
    expect(provisioned).to.deep.equal(['web-1'])
    expect([...etcd.keys.keys()].filter((k) => k.includes('/slots/'))).to.deep.equal([])
    // The node's record went with the result, on the node's lease, and the agent was told so.
    expect(etcd.keys.get(`/muster/${P}/nodes/web-1`)).to.deep.equal({value: 'record of web-1', lease: '1'})
    expect(recordsWritten.get('web-1')).to.be.a('number')
  })

  it('a node just past the free slots lets the nodes ahead claim first, and takes the slot if it is still free a moment later', async function () {
    const id = await request(['web-1', 'web-2'], 1)
    // web-1 waits ahead in line (a status only: no agent behind it claims).
    etcd.apply([{type: 'put', key: rolloutNodeKey(P, id, 'web-1'), value: status('web-1', 'waiting'), lease: '0'}])
    const clock = new ManualClock()
    start('web-2', clock)
    await waitUntil('web-2 waiting', async () => statusOf(id, 'web-2') === 'waiting', {timeoutMs: 5000, intervalMs: 5})
    await settle()
    expect(etcd.claims, 'no claim while the node ahead may take the slot').to.deep.equal([])
    clock.advance(100)
    await waitUntil('web-2 ok', async () => statusOf(id, 'web-2') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(etcd.claims.map(([key]) => key)).to.deep.equal([rolloutSlotKey(P, id, 0)])
  })

  it('a node past the free slots does not claim once the node ahead took the slot', async function () {
    const id = await request(['web-1', 'web-2'], 1)
    etcd.apply([{type: 'put', key: rolloutNodeKey(P, id, 'web-1'), value: status('web-1', 'waiting'), lease: '0'}])
    const clock = new ManualClock()
    start('web-2', clock)
    await waitUntil('web-2 waiting', async () => statusOf(id, 'web-2') === 'waiting', {timeoutMs: 5000, intervalMs: 5})
    // web-1 claims (its slot and its running status in one revision) before web-2's moment passes.
    etcd.apply([{type: 'put', key: rolloutSlotKey(P, id, 0), value: '{}', lease: '99'}, {type: 'put', key: rolloutNodeKey(P, id, 'web-1'), value: JSON.stringify({...JSON.parse(status('web-1', 'running')), lease: '99'}), lease: '0'}])
    await settle()
    clock.advance(100)
    await settle()
    expect(etcd.claims).to.deep.equal([])
    expect(statusOf(id, 'web-2')).to.equal('waiting')
  })

  it('a claim that lost skips that slot until its key changes, whatever else happens meanwhile', async function () {
    const id = await request(['web-1', 'web-2'], 1)
    // Slot 0 is taken in the registry, but this node's view has not seen it yet.
    etcd.quietPut(rolloutSlotKey(P, id, 0), '{}', '99')
    start('web-1')
    await waitUntil('the first claim', async () => etcd.claims.length === 1, {timeoutMs: 5000, intervalMs: 5})
    // Other changes of the rollout: no new try at a slot known to be taken.
    etcd.apply([{type: 'put', key: rolloutNodeKey(P, id, 'web-2'), value: status('web-2', 'waiting'), lease: '0'}])
    etcd.apply([{type: 'put', key: rolloutNodeKey(P, id, 'web-2'), value: status('web-2', 'waiting'), lease: '0'}])
    await settle()
    expect(etcd.claims.length).to.equal(1)
    expect(statusOf(id, 'web-1')).to.equal('waiting')
    // The slot's holder gives it back: its key changed, so it is tried again.
    etcd.apply([{type: 'delete', key: rolloutSlotKey(P, id, 0), value: '', lease: '0'}])
    await waitUntil('web-1 ok', async () => statusOf(id, 'web-1') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(etcd.claims.map(([key]) => key)).to.deep.equal([rolloutSlotKey(P, id, 0), rolloutSlotKey(P, id, 0)])
  })

  it('a claim whose own slot is taken takes another free one in the same transaction', async function () {
    const id = await request(['web-1'], 2)
    // Slot 0 is taken in the registry, but this node's view has not seen it yet.
    etcd.quietPut(rolloutSlotKey(P, id, 0), '{}', '99')
    start('web-1')
    await waitUntil('web-1 ok', async () => statusOf(id, 'web-1') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(etcd.claims.map(([key]) => key)).to.deep.equal([rolloutSlotKey(P, id, 0), rolloutSlotKey(P, id, 1)])
    expect(etcd.claimTxns).to.equal(1)
  })

  it('a node far back in the queue fetches nothing until it is within two batches of a slot', async function () {
    // With n = 1 a node fetches once fewer than 2n + 2 = 4 targets ahead of it have not started.
    const ahead = ['a-0', 'a-1', 'a-2', 'a-3', 'a-4']
    const id = await request([...ahead, 'web-9'], 1)
    const clock = new ManualClock()
    start('web-9', clock)
    await settle()
    expect(fetches, 'five targets ahead, none started: queued').to.equal(0)
    expect(statusOf(id, 'web-9')).to.equal(undefined)
    // Two of them finish (another node's results): three ahead have not started.
    const at = new Date().toISOString()
    for (const node of ['a-0', 'a-1']) etcd.apply([{type: 'put', key: rolloutNodeKey(P, id, node), value: JSON.stringify({...JSON.parse(status(node, 'ok')), startedAt: at, finishedAt: at}), lease: '0'}])
    // Three ahead have not started: within reach, it fetches and gets in line (at its head: the
    // three have not reported waiting), then runs.
    await waitUntil('web-9 ok', async () => statusOf(id, 'web-9') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(fetches).to.equal(1)
  })

  it('a queued node fetches after a quiet spell in which a slot stood free, and takes that slot at once', async function () {
    // The nodes ahead never report (they died before the request): the slot stands free.
    const id = await request(['a-0', 'a-1', 'a-2', 'a-3', 'web-9'], 1)
    const clock = new ManualClock()
    start('web-9', clock)
    await settle()
    expect(fetches).to.equal(0)
    clock.advance(4100)
    await waitUntil('web-9 ok', async () => statusOf(id, 'web-9') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(etcd.claims.map(([key]) => key)).to.deep.equal([rolloutSlotKey(P, id, 0)])
  })

  it('a queued node stays queued through a quiet spell in which every slot was taken', async function () {
    // Six ahead: with a-0 running, five have not started (the node fetches at fewer than four).
    const id = await request(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'a-5', 'web-9'], 1)
    const clock = new ManualClock()
    start('web-9', clock)
    await settle()
    // a-0 holds the slot (a long provision): nobody ready is missing, so nobody else fetches.
    etcd.apply([{type: 'put', key: rolloutSlotKey(P, id, 0), value: '{}', lease: '99'}, {type: 'put', key: rolloutNodeKey(P, id, 'a-0'), value: JSON.stringify({...JSON.parse(status('a-0', 'running')), lease: '99'}), lease: '0'}])
    await settle()
    clock.advance(4100)
    await settle()
    clock.advance(4100)
    await settle()
    expect(fetches).to.equal(0)
    expect(statusOf(id, 'web-9')).to.equal(undefined)
  })
  it('a queued node gives up once its rollout is past its deadline, with no event to wake it, and takes part in the next', async function () {
    const id = await request(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'a-5', 'web-9'], 1)
    const clock = new ManualClock()
    const deployer = start('web-9', clock)
    // a-0 holds the slot: web-9 stays queued (not even the quiet spell lets it go).
    etcd.apply([{type: 'put', key: rolloutSlotKey(P, id, 0), value: '{}', lease: '99'}, {type: 'put', key: rolloutNodeKey(P, id, 'a-0'), value: JSON.stringify({...JSON.parse(status('a-0', 'running')), lease: '99'}), lease: '0'}])
    await settle()
    expect(deployer.status).to.deep.equal({deploy: id, phase: 'queued'})
    clock.advance(601_000)
    await settle()
    expect(deployer.status).to.deep.equal({deploy: null, phase: null})
    const next = await request(['web-9'], 1, clock.now())
    await waitUntil('web-9 ok in the next rollout', async () => statusOf(next, 'web-9') === 'ok', {timeoutMs: 5000, intervalMs: 5})
    expect(statusOf(id, 'web-9')).to.equal(undefined)
  })

  it('a node stopped while its claim is on its way gives the slot back and is waiting again, not running (read as lost)', async function () {
    const id = await request(['web-1', 'web-2'], 1)
    const lease = etcd.lease()
    let land: () => void = () => undefined
    const gate = new Promise<void>((resolve) => {
      land = resolve
    })
    let claiming = false
    const gated: StoreLease = {
      ...lease,
      createFirstAbsent: async (keys, value, options) => {
        claiming = true
        await gate
        return lease.createFirstAbsent(keys, value, options)
      },
    }
    const target = {
      deploy: async () => {
        provisioned.push('web-1')
        return {ok: true, exitCode: 0, signal: null, tail: '', durationMs: 1}
      },
      registryLease: () => gated,
      takeRecord: () => undefined,
      recordWritten: () => undefined,
    }
    const deployer = new Deployer({project: P, node: 'web-1', group: 'web', stateDir: `${dir}/web-1`, store: etcd.store(), feed, target, log: silentLogger, fetch: {openBucket}})
    deployer.start()
    await waitUntil('web-1 claiming', async () => claiming, {timeoutMs: 5000, intervalMs: 5})
    // SIGTERM: the agent stops its deployer, then revokes its registration's lease.
    const stopped = deployer.stop()
    land()
    await stopped
    await lease.revoke()
    await settle()
    expect(provisioned).to.deep.equal([])
    expect([...etcd.keys.keys()].filter((k) => k.includes('/slots/'))).to.deep.equal([])
    // Running without a slot would count as a failure of the rollout (lost): with --max-errors 0 it would halt it.
    expect(statusOf(id, 'web-1')).to.equal('waiting')
    expect(feed.progress(id, new Date())?.failures).to.equal(0)
  })
})
