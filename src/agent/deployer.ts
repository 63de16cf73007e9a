// The agent's part in instance:deploy. For each rollout that targets this node (its group among the
// request's groups, its id among the group's targets) and that it has not been part of yet, one at
// a time and oldest first: report `waiting`; take one of the rollout's N slots (a key created on the
// node's registration lease, in a transaction that also requires the stop key absent) when the
// rollout still hands slots out; report `running` naming that lease; download and verify the
// release; switch to it; decommission what left and provision with MUSTER_REASON=deploy; report ok
// or failed; let the slot go (delete its key). A node that sees more failures than the rollout
// allows writes the stop key, so nobody starts after it.
//
// The slot is on the lease that holds the node's registration, not on one of its own: a node that
// dies, stops or loses its registration gives its slot back with it, and a rollout costs no lease
// grant, keep-alive or revoke per node (a third of a node's registry requests; bench/deploy.ts).
//
// A node never runs a rollout twice: one whose status for this node is running, ok or failed (from
// before a restart) is skipped. A node is queued until it is within two batches of a slot (its
// place among the targets not started yet, by name), then downloads, verifies and unpacks its
// release, and reports `waiting` once that is done (or refused): the line holds nodes ready to
// converge, a slot is never held while its node downloads, and the fleet does not download all at
// once. Waiting nodes do not all race for a freed slot: the node at place p
// among the waiting (by name) tries the p-th free slot at once, with one transaction, straight from
// the watch event that freed it; the next LINE_SLACK nodes try a little later if the slot is still
// free then (a head of the line that died or lags is passed over within SLACK_MS, without a race
// on every hand-off); a claim that lost skips that slot until its key changes again; and a slot
// that stood free through a quiet spell is tried by any waiting node whatever its place, so a
// waiting node that died holds nobody up.
//
// Late nodes: at boot, before the boot provision, the node converges its group's current release
// (groups/GROUP/release) if it is not the one it runs. No slot is taken for that.
import {type DeployNodeStatus, type DeployRequest, rolloutNodeKey, rolloutSlotKey, rolloutStopKey, groupReleaseKey, parseReleaseRef} from '../registry/deploys.js'
import type {DeployFeed, RolloutLine} from '../registry/deploy-feed.js'
import type {RegistryStore, StoreLease} from '../registry/store.js'
import {currentDigest, fetchRelease, type FetchOptions, type InstalledRelease, readCurrentRelease, ReleaseRefused, switchCurrent} from '../release/fetch.js'
import {jitteredDelay} from '../lib/backoff.js'
import type {ProvisionResult} from './provisioner.js'
import {type Clock, systemClock} from './debounce.js'
import type {Logger} from './log.js'

/** What the deployer needs of the agent. */
export interface DeployTarget {
  deploy(release: InstalledRelease): Promise<ProvisionResult>
  /** The lease holding the node's registration, or undefined while it registers (again). */
  registryLease(): StoreLease | undefined
  /** The node record the run left unwritten, to write with the result (on its lease), if any. */
  takeRecord(): {key: string; value: string; lease: string} | undefined
  /** That record landed at `revision`, or was not written (undefined). */
  recordWritten(revision: number | undefined): void
}

export interface DeployerOptions {
  project: string
  node: string
  group: string
  stateDir: string
  store: RegistryStore
  feed: DeployFeed
  target: DeployTarget
  log: Logger
  fetch?: Partial<Pick<FetchOptions, 'allowedBucket' | 'openBucket' | 'releaseProject'>>
  clock?: Clock
}

const MESSAGE_CAP = 4000
/** The longest wait between tries to write a run's result (it lands soon after etcd is back). */
const RESULT_RETRY_CAP_MS = 2000
/** A waiting node out of line tries a slot that stood free this long (ms, jittered). */
const QUIET_MS = 2000
/** How far past the free slots a waiting node still tries: room for views a few events apart, or a dead head of the line. */
const LINE_SLACK = 2
/** How long a node past the free slots (within LINE_SLACK) lets the nodes ahead of it claim first (ms, per place). */
const SLACK_MS = 20
/** The most slots one claim transaction tries (etcd caps a transaction's operations, 128 by default). */
const CLAIM_CANDIDATES = 8
/** How long stop() waits for a claim on its way to land (and its slot to go back). */
const CLAIM_STOP_WAIT_MS = 5000
/** A node fetches its release once it is within this many batches (of n) of a slot. */
const PREFETCH_BATCHES = 2
/** How long a node waits for its release before it gets in line anyway (it then fetches holding a slot). */
const FETCH_BEFORE_LINE_MS = 120_000

export class Deployer {
  private readonly clock: Clock
  private readonly finished = new Set<string>()
  private active: {id: string; phase: 'queued' | 'reporting' | 'waiting' | 'claiming' | 'running'; fetched?: Promise<InstalledRelease>} | undefined
  private timer: unknown
  private quietTimer: unknown
  private slackTimer: unknown
  /** Slots whose claim this node lost, with the slot's change count then: skipped until it changes. */
  private lostClaims = new Map<number, number>()
  private unsubscribe: (() => void) | undefined
  private unwait: (() => void) | undefined
  private unturn: (() => void) | undefined
  private turnTimer: unknown
  private stopped = false
  private running: Promise<void> | undefined
  /** A claim transaction on its way (and, if the node stopped meanwhile, the slot's give-back). */
  private claiming: Promise<void> | undefined

  constructor(private readonly options: DeployerOptions) {
    this.clock = options.clock ?? systemClock
  }

  start(): void {
    // A node between rollouts looks again when a request comes or goes; a queued node is woken by
    // the queue (waitForTurn), a waiting one by the line (waitInLine): a process with many nodes
    // does not wake them all on every change.
    this.unsubscribe = this.options.feed.subscribeRequests(() => this.evaluate())
    this.evaluate()
  }

  /** Stops taking part: no new slot; a run in progress is left to finish (the agent's stop cancels it). */
  async stop(): Promise<void> {
    this.stopped = true
    this.unsubscribe?.()
    this.leaveLine()
    this.clearTimer()
    // A claim in flight gives its slot back itself when it lands (tryClaim), before the agent
    // closes the store (bounded: a registry that does not answer must not hold the exit up); a
    // run in progress reports and lets its slot go.
    if (this.claiming) {
      let timer: unknown
      await Promise.race([this.claiming, new Promise<void>((resolve) => {
        timer = this.clock.setTimeout(resolve, CLAIM_STOP_WAIT_MS)
      })])
      this.clock.clearTimeout(timer)
    }
    await this.running
  }

  get status(): {deploy: string | null; phase: string | null} {
    return {deploy: this.active?.id ?? null, phase: this.active?.phase ?? null}
  }

  private get fetchOptions(): FetchOptions {
    return {project: this.options.project, group: this.options.group, stateDir: this.options.stateDir, ...this.options.fetch}
  }

  private evaluate(): void {
    if (this.stopped || this.active) return
    const {feed, node, group} = this.options
    for (const id of feed.ids()) {
      if (this.finished.has(id)) continue
      const state = feed.state(id)
      if (!state || !targets(state.request, group, node)) {
        this.finished.add(id)
        continue
      }
      const mine = state.statuses.get(node)
      // Its own status from before a restart: never run a rollout twice.
      if (mine && mine.state !== 'waiting') {
        this.finished.add(id)
        continue
      }
      const now = new Date(this.clock.now())
      if (state.stop !== undefined || now.getTime() > Date.parse(state.request.deadline)) {
        this.finished.add(id)
        continue
      }
      this.active = {id, phase: 'queued'}
      // Already in line (from before a restart), or nothing to fetch: no need to wait for a turn.
      if (mine !== undefined || !state.request.releases[group]) this.begin(id, state.request, mine !== undefined)
      else this.awaitTurn(id, state.request)
      return
    }
  }

  /**
   * Queued until the node is within PREFETCH_BATCHES batches of a slot: a rollout of 500 nodes
   * then has some 2n downloading and unpacking at its start, not all 500 (the first batch starts
   * sooner, and the bucket sees the fleet a few batches at a time). A slot that stands free
   * through a quiet spell (the nodes ahead died, or none is ready) lets every queued node go.
   */
  private awaitTurn(id: string, request: DeployRequest): void {
    const {feed, node} = this.options
    const within = PREFETCH_BATCHES * request.n + LINE_SLACK
    const check = (): void => {
      const active = this.active
      if (this.stopped || active?.id !== id || active.phase !== 'queued') return
      const state = feed.state(id)
      if (!state) return this.giveUp(id, 'the request is gone')
      if (state.stop !== undefined) return this.giveUp(id, `stopped (${state.stop.reason})`)
      if (this.clock.now() > Date.parse(state.request.deadline)) return this.giveUp(id, 'past the deadline')
      const place = feed.queuePlace(id, node)
      if (place === undefined || place < within) {
        this.leaveLine()
        this.clearTimer()
        this.begin(id, state.request, false)
      }
    }
    const arm = (): void => {
      // As for a claim out of line: a slot that stood free through the whole spell means nobody
      // ready is in line to take it (the nodes ahead died before they reported, or the line ran out).
      const armed = freeNow(feed.line(id, new Date(this.clock.now())))
      this.turnTimer = this.clock.setTimeout(() => {
        this.turnTimer = undefined
        // Stopped, gone or past its deadline with no event since (nothing else would wake it).
        check()
        if (this.active?.id !== id || this.active.phase !== 'queued') return
        const line = feed.line(id, new Date(this.clock.now()))
        if (line && line.open && stoodFree(line, armed).length > 0) {
          this.options.log.info('deploy: a slot stood free while this node was queued; fetching now', {deploy: id, place: feed.queuePlace(id, node)})
          this.leaveLine()
          // In line, it takes that slot at once if it still stands free: the spell has been waited.
          this.begin(id, request, false, armed)
          return
        }
        arm()
      }, jitteredDelay(0, QUIET_MS, QUIET_MS * 2))
    }
    this.unturn = feed.waitForTurn(id, node, within, check)
    arm()
    check()
  }

  /** Fetches the release (downloaded, verified and unpacked, not switched to) and gets in line. */
  private begin(id: string, request: DeployRequest, reported: boolean, idle?: ReadonlyMap<number, number>): void {
    if (this.active?.id !== id) return
    this.active.phase = 'reporting'
    // The slot is then held only for the switch and the converge. A refusal is reported once a
    // slot is taken.
    const ref = request.releases[this.options.group]
    if (ref) {
      this.active.fetched = fetchRelease(ref, this.fetchOptions)
      this.active.fetched.catch(() => undefined)
    }
    void this.join(id, reported, idle)
  }

  private async join(id: string, reported: boolean, idle?: ReadonlyMap<number, number>): Promise<void> {
    const fetched = this.active?.fetched
    if (fetched && !reported) {
      // In line only once ready (or refused: that is reported once a slot is taken), bounded so a
      // download that hangs does not keep the node out of the rollout.
      let timer: unknown
      await Promise.race([
        fetched.then(() => undefined, () => undefined),
        new Promise<void>((resolve) => {
          timer = this.clock.setTimeout(resolve, FETCH_BEFORE_LINE_MS)
        }),
      ])
      this.clock.clearTimeout(timer)
      if (this.active?.id !== id || this.stopped) return
    }
    try {
      if (!reported) await this.report(id, {state: 'waiting', startedAt: null, finishedAt: null, message: null, lease: null})
      this.options.log.info('deploy: waiting for a slot', {deploy: id})
    } catch (error) {
      this.options.log.warn('deploy: cannot report waiting; trying again', {deploy: id, error: (error as Error).message})
      this.active = undefined
      this.schedule(jitteredDelay(0, 1000, 5000))
      return
    }
    if (this.active?.id !== id) return
    this.active.phase = 'waiting'
    this.lostClaims.clear()
    this.unwait = this.options.feed.waitInLine(id, this.options.node, LINE_SLACK, () => void this.tryClaim(false))
    await (idle ? this.tryClaim(true, false, idle) : this.tryClaim(false))
  }

  private giveUp(id: string, why: string): void {
    this.options.log.info('deploy: not taking part', {deploy: id, why})
    this.finished.add(id)
    this.active = undefined
    this.leaveLine()
    this.clearTimer()
    this.evaluate()
  }

  private async tryClaim(force: boolean, deferred = false, quiet?: ReadonlyMap<number, number>): Promise<void> {
    const active = this.active
    if (this.stopped || !active || active.phase !== 'waiting') return
    const {id} = active
    const {feed, node} = this.options
    const now = new Date(this.clock.now())
    // Read on every event by every waiting node: kept current by the feed at a cost independent of the fleet's size.
    const line = feed.line(id, now)
    if (!line) return this.giveUp(id, 'the request is gone')
    // Far back in the line with both timers armed: nothing to do on this event (the common case).
    if (!force && line.open && this.timer !== undefined && this.quietTimer !== undefined) {
      const place = line.place(node)
      if (place === undefined || place >= line.free.length + LINE_SLACK) return
    }
    if (!line.open) {
      const state = feed.state(id)
      if (!state) return this.giveUp(id, 'the request is gone')
      if (state.stop === undefined && line.failures > state.request.maxErrors) await this.writeStop(id, state.request)
      return this.giveUp(id, state.stop ? `stopped (${state.stop.reason})` : now.getTime() > line.deadline ? 'past the deadline' : 'too many failures')
    }
    // Wake at the deadline (to give up), and after a spell without a slot try out of line: armed
    // once, not pushed back by every event of a busy rollout.
    if (this.timer === undefined) this.schedule(Math.max(0, line.deadline - now.getTime() + 10))
    if (this.quietTimer === undefined) {
      // The free slots now, with their change counts: at the timer, only a slot that stood free
      // all along (nobody in line took it: the head of the line is dead or stuck) is taken out of
      // line. A busy rollout always has some slot free for a moment; taking those would race the
      // head of the line on every hand-off.
      const armed = freeNow(line)
      this.quietTimer = this.clock.setTimeout(() => {
        this.quietTimer = undefined
        void this.tryClaim(true, false, armed)
      }, jitteredDelay(0, QUIET_MS, QUIET_MS * 2))
    }
    // Slots whose claim this node lost are skipped until their key changes (the winner's claim may
    // not have reached this node's view yet).
    for (const [slot, changes] of this.lostClaims) if (line.slotChanges(slot) !== changes) this.lostClaims.delete(slot)
    const free = line.free.filter((k) => !this.lostClaims.has(k))
    if (free.length === 0) return
    const place = line.place(node)
    // The slots to try, in one transaction, first to last: the first free one is taken.
    let candidates: number[]
    if (force) {
      const idle = quiet ? stoodFree(line, quiet).filter((k) => !this.lostClaims.has(k)) : []
      if (idle.length === 0) return
      candidates = rotate(idle, Math.floor(Math.random() * idle.length))
    } else {
      // Not in line until its own `waiting` is read back (so hundreds of nodes joining at once do
      // not all race for the first slots), and then only at the head of the line.
      if (place === undefined || place >= line.free.length + LINE_SLACK) return
      if (place >= line.free.length && !deferred) {
        // Just past the free slots: the nodes ahead claim first; try later if a slot is still free.
        if (this.slackTimer === undefined) {
          this.slackTimer = this.clock.setTimeout(() => {
            this.slackTimer = undefined
            void this.tryClaim(false, true)
          }, SLACK_MS * (place - line.free.length + 1))
        }
        return
      }
      // The p-th free slot at place p first: the nodes at the head each try a different one. Then
      // the other free slots: views a few events apart (another process's node took this node's
      // slot) cost no second round trip, as long as some slot is free.
      const own = line.free[place % line.free.length] as number
      candidates = this.lostClaims.has(own) ? rotate(free, place % free.length) : [own, ...free.filter((k) => k !== own)]
    }
    candidates = candidates.slice(0, CLAIM_CANDIDATES)
    // Registering again (its lease was lost): the quiet timer tries later.
    const lease = this.options.target.registryLease()
    if (!lease) return
    active.phase = 'claiming'
    let claimed = false
    let lost = false
    const keys = candidates.map((k) => rolloutSlotKey(this.options.project, id, k))
    let landed: () => void = () => undefined
    this.claiming = new Promise<void>((resolve) => {
      landed = resolve
    })
    try {
      const value = JSON.stringify({node, at: now.toISOString()})
      const startedAt = now.toISOString()
      const running = this.statusEntry(id, {state: 'running', startedAt, finishedAt: null, message: null, lease: lease.id})
      // One transaction: the first free slot of the candidates if the rollout is not stopped, and
      // the `running` status.
      const changes = candidates.map((k) => line.slotChanges(k))
      const taken = await lease.createFirstAbsent(keys, value, {unlessExists: rolloutStopKey(this.options.project, id), alsoPut: running})
      const slotKey = keys[taken]
      if (slotKey !== undefined) {
        claimed = true
        if (this.stopped) {
          // Stopped while the claim was on its way: the slot goes back at once, and the node is
          // `waiting` again in the same transaction. Left `running` without a slot, it would read
          // as lost (a failure: with --max-errors 0 the rollout halts) although it never started;
          // waiting, it takes part once restarted. stop() waits for this before the lease goes.
          await this.options.store.commit([this.statusEntry(id, {state: 'waiting', startedAt: null, finishedAt: null, message: null, lease: null})], [], {key: slotKey, lease: lease.id}).catch(() => undefined)
          return
        }
        active.phase = 'running'
        this.leaveLine()
        this.clearTimer()
        this.running = this.run(id, line.request, {key: slotKey, lease: lease.id}, startedAt, active.fetched)
        return
      }
      for (const [i, k] of candidates.entries()) this.lostClaims.set(k, changes[i] as number)
      lost = true
    } catch (error) {
      this.options.log.warn('deploy: claiming a slot failed; trying again', {deploy: id, error: (error as Error).message})
    } finally {
      landed()
    }
    if (this.active === active && !claimed) {
      active.phase = 'waiting'
      // Lost every candidate (now skipped): look again at once, since a slot beyond them may be free
      // or one may have been freed while the claim was out (its event found this node claiming).
      // Not after an error: the next event or the quiet timer tries again.
      if (lost) void this.tryClaim(false, true)
    }
  }

  private async run(id: string, request: DeployRequest, slot: {key: string; lease: string}, startedAt: string, fetched: Promise<InstalledRelease> | undefined): Promise<void> {
    const slotKey = slot.key
    const {log, group} = this.options
    let ok = false
    let message: string | null = null
    try {
      log.info('deploy: slot taken', {deploy: id, slot: slotKey, release: request.releases[group]?.digest})
      if (!fetched) throw new ReleaseRefused(`the request has no release for group ${group}`)
      const release = await fetched
      await switchCurrent(this.options.stateDir, release.digest)
      log.info('deploy: switched to the release; provisioning', {deploy: id, release: release.digest})
      const result = await this.options.target.deploy(release)
      ok = result.ok
      if (!ok) message = `provision failed (${result.signal ?? `exit ${result.exitCode}`}):\n${result.tail}`
    } catch (error) {
      message = (error as Error).message
      log.error('deploy: refused or failed before provisioning', {deploy: id, error: message})
    }
    const finishedAt = new Date(this.clock.now()).toISOString()
    const result = this.statusEntry(id, {state: ok ? 'ok' : 'failed', startedAt, finishedAt, message: message === null ? null : capTail(message), lease: null})
    // Success: the status and the slot's release in one transaction. A failure is written first,
    // then the stop key if it is one too many, and only then is the slot given back: a node whose
    // view lags cannot take that slot before the stop key is there. The node's record (its
    // provision's outcome) goes with the result.
    const record = this.options.target.takeRecord()
    let carry = record
    let recordAt: number | undefined
    const reported = await this.reportResult(id, async () => {
      const puts = carry ? [result, carry] : [result]
      // Tried once with the record: a retry goes without it (a lease gone since would refuse the
      // whole transaction every time), and the registration writes it instead.
      carry = undefined
      // The slot only while this node's claim still holds it: had its lease expired mid-run (a
      // paused VM, a partition), the slot may be another node's by now, and deleting it would let
      // a third node in (more than n at once) and make that node read as lost.
      const revision = await this.options.store.commit(puts, [], ok ? slot : undefined)
      if (puts.length > 1) recordAt = revision
    })
    if (record) this.options.target.recordWritten(recordAt)
    if (reported && !ok) {
      const state = this.options.feed.state(id)
      const progress = state ? this.options.feed.progress(id, new Date(this.clock.now())) : undefined
      // The feed may not have seen this node's own failure yet.
      const seenMine = state?.statuses.get(this.options.node)?.state === 'failed'
      const failures = (progress?.failures ?? 0) + (seenMine ? 0 : 1)
      if (failures > request.maxErrors) await this.writeStop(id, request)
    }
    // After the result: a slot comes back only once its holder's outcome is readable. Retried like
    // the result: a slot key left behind on a live node's lease would hold the slot for good.
    if (reported && !ok) await this.reportResult(id, () => this.options.store.commit([], [], slot))
    log.info(ok ? 'deploy: ok' : 'deploy: failed', {deploy: id})
    this.finished.add(id)
    this.active = undefined
    this.running = undefined
    this.evaluate()
  }

  /**
   * Writes a run's result, retrying until it lands or the agent stops. A result that never lands
   * leaves the node `running` until its slot's lease expires, and then the rollout reads it as
   * lost (a failure: with --max-errors 0 the whole rollout stops) although it converged. An etcd
   * restart or a leader election while the provision ends must not do that.
   */
  private async reportResult(id: string, write: () => Promise<unknown>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write()
        if (attempt > 0) this.options.log.info('deploy: result reported', {deploy: id})
        return true
      } catch (error) {
        if (this.stopped) {
          this.options.log.error('deploy: cannot report the result; stopping', {deploy: id, error: (error as Error).message})
          return false
        }
        const retryInMs = jitteredDelay(attempt, 250, RESULT_RETRY_CAP_MS)
        this.options.log.warn('deploy: cannot report the result yet; retrying', {deploy: id, error: (error as Error).message, retryInMs})
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, retryInMs))
      }
    }
  }

  private async writeStop(id: string, request: DeployRequest): Promise<void> {
    const stop = {reason: 'max-errors', at: new Date(this.clock.now()).toISOString(), by: this.options.node}
    try {
      if (await this.options.store.createIfAbsent(rolloutStopKey(this.options.project, id), JSON.stringify(stop))) {
        this.options.log.warn('deploy: more failures than allowed; no further slot is handed out', {deploy: id, maxErrors: request.maxErrors})
      }
    } catch (error) {
      this.options.log.warn('deploy: cannot write the stop key', {deploy: id, error: (error as Error).message})
    }
  }

  private async report(id: string, fields: Omit<DeployNodeStatus, 'node' | 'group'>): Promise<void> {
    const {key, value} = this.statusEntry(id, fields)
    await this.options.store.put(key, value)
  }

  private statusEntry(id: string, fields: Omit<DeployNodeStatus, 'node' | 'group'>): {key: string; value: string} {
    const status: DeployNodeStatus = {node: this.options.node, group: this.options.group, ...fields}
    return {key: rolloutNodeKey(this.options.project, id, this.options.node), value: JSON.stringify(status)}
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    // Timers cap at 2^31-1 ms; a deadline further off is re-checked then.
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      if (this.active?.phase === 'waiting') void this.tryClaim(false)
      else this.evaluate()
    }, Math.min(ms, 2 ** 31 - 1))
  }

  private leaveLine(): void {
    this.unwait?.()
    this.unwait = undefined
    this.unturn?.()
    this.unturn = undefined
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    if (this.quietTimer !== undefined) this.clock.clearTimeout(this.quietTimer)
    if (this.slackTimer !== undefined) this.clock.clearTimeout(this.slackTimer)
    if (this.turnTimer !== undefined) this.clock.clearTimeout(this.turnTimer)
    this.turnTimer = undefined
    this.timer = undefined
    this.quietTimer = undefined
    this.slackTimer = undefined
  }
}

function targets(request: DeployRequest, group: string, node: string): boolean {
  return request.groups.includes(group) && (request.targets[group] ?? []).includes(node)
}

/** The free slots of a view with their change counts, to tell at the end of a quiet spell which stood free all along. */
function freeNow(line: RolloutLine | undefined): ReadonlyMap<number, number> {
  return new Map((line?.free ?? []).map((k) => [k, line?.slotChanges(k) ?? 0]))
}

/** The slots free now that were free, unchanged, at `armed`: nobody in line took them through the spell. */
function stoodFree(line: RolloutLine, armed: ReadonlyMap<number, number>): number[] {
  return line.free.filter((k) => armed.get(k) === line.slotChanges(k))
}

/** items from index `from` on, then those before it. */
function rotate<T>(items: readonly T[], from: number): T[] {
  return [...items.slice(from), ...items.slice(0, from)]
}

/** The message's first line and its last lines, within the cap a status value allows. */
export function capTail(message: string): string {
  if (message.length <= MESSAGE_CAP) return message
  const [first = ''] = message.split('\n', 1)
  const head = `${first.slice(0, 200)}\n…\n`
  return head + message.slice(message.length - (MESSAGE_CAP - head.length))
}

/**
 * The release the node should run at boot: its group's current release (groups/GROUP/release)
 * fetched, verified and switched to when it differs from what stateDir/current holds; else what
 * stateDir/current holds; undefined when neither exists (the nodes file says what the node is).
 * A group release that cannot be fetched or fails a check is logged and the node keeps its own.
 */
export async function bootRelease(options: {project: string; group: string; stateDir: string; store: RegistryStore; log: Logger; fetch?: DeployerOptions['fetch']}): Promise<InstalledRelease | undefined> {
  const {project, group, stateDir, store, log} = options
  const expect = {project: options.fetch?.releaseProject ?? project, group}
  let text: string | undefined
  try {
    text = await store.get(groupReleaseKey(project, group))
  } catch (error) {
    log.warn('cannot read the group\'s current release; keeping this node\'s', {error: (error as Error).message})
  }
  const ref = text === undefined ? undefined : parseReleaseRef(text)
  if (text !== undefined && !ref) log.warn('the group\'s current release key is malformed; ignored', {key: groupReleaseKey(project, group)})
  if (ref && ref.digest !== currentDigest(stateDir)) {
    try {
      const release = await fetchRelease(ref, {project, group, stateDir, ...options.fetch})
      await switchCurrent(stateDir, release.digest)
      log.info('switched to the group\'s current release', {release: release.digest})
      return release
    } catch (error) {
      log.error('cannot use the group\'s current release; keeping this node\'s', {release: ref.digest, error: (error as Error).message})
    }
  }
  try {
    return readCurrentRelease(stateDir, expect)
  } catch (error) {
    log.error('the current release cannot be read; the nodes file says what this node is', {error: (error as Error).message})
    return undefined
  }
}
