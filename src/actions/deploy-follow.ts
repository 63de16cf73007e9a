// Following a rollout: the deploy's keys (request, slots, node statuses, stop) read once and then
// watched, read with the protocol's pure deployProgress(), and reported through callbacks the
// command renders. The follower also keeps the rollout's promises the agents cannot keep alone:
// past the deadline it writes stop {reason: 'timeout'}, and once more nodes have failed than
// --max-errors allows it writes stop {reason: 'max-errors'} (no node takes a slot after either).
// Both writes are create-if-absent: a cancel (or another follower) that came first stands.
// deploy:status and deploy:cancel read the same state.
import {
  type DeployNodeStatus,
  type DeployProgress,
  deployKey,
  deployProgress,
  type DeployRequest,
  deploysPrefix,
  type DeployState,
  type DeployStop,
  type NodeOutcome,
  parseDeployKey,
  parseDeployNodeStatus,
  parseDeployRequest,
  parseDeployStop,
  rolloutPrefix,
  rolloutStopKey,
} from '../registry/deploys.js'
import type {RegistryStore, Watch} from '../registry/store.js'
import type {KeyEvent} from '../registry/view.js'
import {UserError} from '../errors.js'
import {registryCall, whoAmI} from './deploy.js'

/** A deploy's keys as read so far: DeployState plus what applying events needs. */
export class DeployKeys {
  request: DeployRequest | undefined
  readonly statuses = new Map<string, DeployNodeStatus>()
  /** slot key → the lease holding it. */
  private readonly slots = new Map<string, string>()
  stop: DeployStop | undefined
  revision = 0

  constructor(readonly project: string, readonly id: string) {}

  apply(events: readonly KeyEvent[], revision: number): void {
    for (const event of events) {
      const parsed = parseDeployKey(this.project, event.key)
      if (!parsed || parsed.id !== this.id) continue
      const put = event.type === 'put'
      if (parsed.kind === 'request') this.request = put ? parseDeployRequest(this.id, event.value) ?? this.request : this.request
      else if (parsed.kind === 'stop') this.stop = put ? parseDeployStop(event.value) ?? this.stop : undefined
      else if (parsed.kind === 'slot') {
        if (put && event.lease !== undefined && event.lease !== '0') this.slots.set(event.key, event.lease)
        else this.slots.delete(event.key)
      } else if (parsed.kind === 'node') {
        const status = put ? parseDeployNodeStatus(parsed.node, event.value) : undefined
        if (status) this.statuses.set(parsed.node, status)
        else if (!put) this.statuses.delete(parsed.node)
      }
    }
    this.revision = Math.max(this.revision, revision)
  }

  state(): DeployState | undefined {
    if (!this.request) return undefined
    return {request: this.request, statuses: this.statuses, slotLeases: new Set(this.slots.values()), stop: this.stop}
  }
}

/**
 * The deploy's keys: its request (deploys/ID, written once) and then its rollout (rollout/ID/, at
 * one revision, from which a follower watches); a UserError when there is no such deploy.
 */
export async function readDeploy(store: RegistryStore, project: string, id: string): Promise<DeployKeys> {
  const keys = new DeployKeys(project, id)
  const request = await registryCall(store.endpoints, () => store.snapshot(deployKey(project, id)))
  keys.apply(request.events.filter((e) => e.key === deployKey(project, id)), request.revision)
  const rollout = await registryCall(store.endpoints, () => store.snapshot(rolloutPrefix(project, id)))
  keys.apply(rollout.events, rollout.revision)
  if (!keys.request) {
    throw new UserError(`no deploy ${id} in project ${project}`, {hint: 'List deploys with: muster deploy:status (the newest), or check --project and --etcd.'})
  }
  return keys
}

/**
 * Deploys of any of `groups` still rolling out: not stopped and with nodes still waiting or
 * running. A second deploy of a group beside one of these would double its -n (each deploy has
 * slots of its own) and could leave nodes on the older release.
 */
export async function unfinishedDeploys(store: RegistryStore, project: string, groups: readonly string[], now: Date): Promise<Array<{id: string; groups: string[]; progress: DeployProgress}>> {
  const snapshot = await registryCall(store.endpoints, () => store.snapshot(deploysPrefix(project)))
  const found: Array<{id: string; groups: string[]; progress: DeployProgress}> = []
  for (const event of snapshot.events) {
    const parsed = parseDeployKey(project, event.key)
    if (parsed?.kind !== 'request') continue
    const request = parseDeployRequest(parsed.id, event.value)
    if (!request || !request.groups.some((g) => groups.includes(g))) continue
    const state = (await readDeploy(store, project, parsed.id)).state()
    if (!state || state.stop) continue
    const progress = deployProgress(state, now)
    if (!progress.done) found.push({id: parsed.id, groups: request.groups, progress})
  }
  return found
}

/** The newest deploy's id (ids sort by time), or a UserError when the project has none. */
export async function newestDeployId(store: RegistryStore, project: string): Promise<string> {
  const snapshot = await registryCall(store.endpoints, () => store.snapshot(deploysPrefix(project)))
  const ids = snapshot.events.map((e) => parseDeployKey(project, e.key)).flatMap((p) => (p?.kind === 'request' ? [p.id] : []))
  const newest = ids.sort().at(-1)
  if (!newest) throw new UserError(`no deploy in project ${project}`, {hint: 'Start one with: muster instance:deploy GROUP'})
  return newest
}

/** Writes the stop key unless one is there; returns the stop that stands. */
export async function stopDeploy(store: RegistryStore, project: string, id: string, reason: DeployStop['reason'], now: Date, env: NodeJS.ProcessEnv = process.env): Promise<{stop: DeployStop; written: boolean}> {
  const stop: DeployStop = {reason, at: now.toISOString(), by: whoAmI(env)}
  const key = rolloutStopKey(project, id)
  if (await registryCall(store.endpoints, () => store.createIfAbsent(key, JSON.stringify(stop)))) return {stop, written: true}
  const there = await registryCall(store.endpoints, () => store.get(key))
  return {stop: (there === undefined ? undefined : parseDeployStop(there)) ?? stop, written: false}
}

/**
 * When the rollout should end, from what finished so far: the mean run of the nodes that finished,
 * times the batches left (nodes not finished / n), as of the last finish. Given `now`, the time
 * since that finish is taken off (never below 0), so the ETA counts down between finishes instead
 * of standing still until the next one. Undefined before any node finished.
 */
export function estimateRemainingMs(progress: DeployProgress, n: number, now?: Date): number | undefined {
  let total = 0
  let count = 0
  let lastFinish = -Infinity
  for (const {status: s} of progress.nodes) {
    if (s === undefined || (s.state !== 'ok' && s.state !== 'failed') || s.startedAt === null || s.finishedAt === null) continue
    const finished = Date.parse(s.finishedAt)
    const ms = finished - Date.parse(s.startedAt)
    if (!Number.isFinite(ms) || ms < 0) continue
    total += ms
    count++
    lastFinish = Math.max(lastFinish, finished)
  }
  if (count === 0) return undefined
  const left = progress.counts.waiting + progress.counts.running
  const estimate = (total / count) * Math.ceil(left / Math.max(1, n))
  // A finish stamped by a node's clock ahead of ours takes nothing off.
  const since = now === undefined ? 0 : Math.max(0, now.getTime() - lastFinish)
  return Math.max(0, estimate - since)
}

export const FAILED_OUTCOMES: readonly NodeOutcome[] = ['failed', 'lost', 'timed-out', 'skipped']

export interface FollowUpdate {
  progress: DeployProgress
  request: DeployRequest
  stop: DeployStop | undefined
  elapsedMs: number
  etaMs: number | undefined
}

export interface FollowHandlers {
  /** Called on every tick and after every change. */
  update(update: FollowUpdate): void
  /** Called once per node that failed (or was lost), with its status (message: the log's last lines). */
  failure(node: DeployProgress['nodes'][number]): void
  /** The rollout stopped handing out slots (said once, whoever wrote the stop key). */
  stopped(stop: DeployStop): void
  /** Something worth saying that changes nothing (the registry not answering for a while). */
  warning?(text: string): void
}

export interface FollowOptions {
  store: RegistryStore
  project: string
  id: string
  handlers: FollowHandlers
  /** Aborted on Ctrl-C: the follower detaches without touching the deploy. */
  signal?: AbortSignal
  now?: () => Date
  tickMs?: number
  /** How long nodes still running past the deadline are waited for (default: 5 minutes). */
  graceMs?: number
  env?: NodeJS.ProcessEnv
}

export interface FollowResult {
  request: DeployRequest
  progress: DeployProgress
  stop: DeployStop | undefined
  /** Ctrl-C: the deploy goes on without us. */
  detached: boolean
  /** Nodes still running when the grace after the deadline ran out. */
  gaveUp: boolean
  elapsedMs: number
}

/** How soon after a batch of watch events the follower checks whether the rollout ended (ms). */
const EVENT_CHECK_MS = 10

/** Follows a deploy until nothing more will happen (or Ctrl-C). */
export async function followDeploy(options: FollowOptions): Promise<FollowResult> {
  const {store, project, id, handlers} = options
  const now = options.now ?? (() => new Date())
  let keys = await readDeploy(store, project, id)
  const request = keys.request as DeployRequest
  const started = Date.parse(request.requestedAt)
  const deadline = Date.parse(request.deadline)
  const graceMs = options.graceMs ?? 5 * 60_000
  const reported = new Set<string>()
  let watch: Watch | undefined
  let resnapshot = false
  let writingStop = false
  let stopAnnounced = false

  // Set once following: a batch of events that ends the rollout (or adds a failure) is acted on
  // within EVENT_CHECK_MS instead of at the next tick, so the command returns as the last node
  // reports, not up to a tick later.
  let onEvents = (): void => undefined
  const openWatch = async (): Promise<void> => {
    watch = await store.watch(rolloutPrefix(project, id), keys.revision + 1, {
      events: (events, revision) => {
        keys.apply(events, revision)
        onEvents()
      },
      broken: () => {
        resnapshot = true
      },
      connection: () => undefined,
    })
  }
  await registryCall(store.endpoints, openWatch)

  try {
    return await new Promise<FollowResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      let finished = false
      const finish = (result: Omit<FollowResult, 'request' | 'elapsedMs'>): void => {
        if (finished) return
        finished = true
        clearInterval(timer)
        options.signal?.removeEventListener('abort', onAbort)
        resolve({...result, request, elapsedMs: now().getTime() - started})
      }
      const onAbort = (): void => {
        const state = keys.state()
        finish({progress: deployProgress(state as DeployState, now()), stop: keys.stop, detached: true, gaveUp: false})
      }
      // A Ctrl-C while the deploy's keys were being read has already aborted: detach now.
      if (options.signal?.aborted) return onAbort()
      options.signal?.addEventListener('abort', onAbort)
      const tick = async (): Promise<void> => {
        if (resnapshot) {
          // etcd cancelled the watch (its revision compacted away): read everything again.
          keys = await readDeploy(store, project, id)
          await watch?.close()
          await openWatch()
          resnapshot = false
        }
        if (finished) return
        const at = now()
        let progress = deployProgress(keys.state() as DeployState, at)
        if (!keys.stop && !writingStop && !(progress.done && progress.ok)) {
          const reason = at.getTime() > deadline ? 'timeout' : progress.failures > request.maxErrors ? 'max-errors' : undefined
          if (reason) {
            writingStop = true
            const {stop, written} = await stopDeploy(store, project, id, reason, at, options.env).finally(() => {
              writingStop = false
            })
            if (written || keys.stop === undefined) keys.stop = stop
            progress = deployProgress(keys.state() as DeployState, at)
          }
        }
        // Said once, whoever wrote it: this follower, an agent past max-errors, a deploy:cancel.
        if (keys.stop && !stopAnnounced) {
          stopAnnounced = true
          handlers.stopped(keys.stop)
        }
        for (const entry of progress.nodes) {
          if ((entry.outcome === 'failed' || entry.outcome === 'lost') && !reported.has(entry.node)) {
            reported.add(entry.node)
            handlers.failure(entry)
          }
        }
        if (finished) return
        handlers.update({progress, request, stop: keys.stop, elapsedMs: at.getTime() - started, etaMs: estimateRemainingMs(progress, request.n, at)})
        if (progress.done) return finish({progress, stop: keys.stop, detached: false, gaveUp: false})
        if (at.getTime() > deadline + graceMs) return finish({progress, stop: keys.stop, detached: false, gaveUp: true})
      }
      let busy = false
      let again = false
      let outage = false
      const run = (fromEvent = false): void => {
        if (finished) return
        if (busy) {
          // An event that may end the rollout while a tick runs: one more tick right after.
          if (fromEvent) again = true
          return
        }
        busy = true
        tick()
          .then(() => {
            outage = false
          })
          .catch((error: unknown) => {
            // The registry not answering for a while is no reason to stop following: the watch
            // resumes by itself, and the next tick tries the reads and writes again.
            if (error instanceof UserError) {
              if (!outage) handlers.warning?.(`${error.message}; still following, retrying`)
              outage = true
              return
            }
            clearInterval(timer)
            finished = true
            options.signal?.removeEventListener('abort', onAbort)
            reject(error as Error)
          })
          .finally(() => {
            busy = false
            if (again) {
              again = false
              run(true)
            }
          })
      }
      timer = setInterval(() => run(), options.tickMs ?? 250)
      let checking: NodeJS.Timeout | undefined
      let failuresSeen = 0
      onEvents = () => {
        if (checking !== undefined || finished) return
        checking = setTimeout(() => {
          checking = undefined
          const state = keys.state()
          if (finished || !state) return
          const progress = deployProgress(state, now())
          if (progress.done || progress.failures > failuresSeen) run(true)
          failuresSeen = progress.failures
        }, EVENT_CHECK_MS)
      }
      run()
    })
  } finally {
    await watch?.close()
  }
}

/** A deploy's outcome as data (--json): every targeted node, its outcome and its last status. */
export interface DeploySummaryData {
  ok: boolean
  counts: DeployProgress['counts']
  stop: DeployStop | null
  /** Nodes were still running when the follower stopped waiting (past the deadline and its grace). */
  gaveUp: boolean
  elapsedMs: number
  nodes: Array<{node: string; group: string; outcome: NodeOutcome; startedAt: string | null; finishedAt: string | null; message: string | null}>
}

export function summaryData(result: Pick<FollowResult, 'progress' | 'stop' | 'gaveUp' | 'elapsedMs'>): DeploySummaryData {
  const {progress} = result
  return {
    ok: progress.ok,
    counts: progress.counts,
    stop: result.stop ?? null,
    gaveUp: result.gaveUp,
    elapsedMs: result.elapsedMs,
    nodes: progress.nodes.map((e) => ({node: e.node, group: e.group, outcome: e.outcome, startedAt: e.status?.startedAt ?? null, finishedAt: e.status?.finishedAt ?? null, message: e.status?.message ?? null})),
  }
}

export interface DeployStatusData extends DeploySummaryData {
  id: string
  request: DeployRequest
  done: boolean
}

/** One reading of a deploy (the newest when no id is given). */
export async function deployStatus(store: RegistryStore, project: string, id: string | undefined, now: Date = new Date()): Promise<{data: DeployStatusData; progress: DeployProgress}> {
  const chosen = id ?? (await newestDeployId(store, project))
  const keys = await readDeploy(store, project, chosen)
  const state = keys.state() as DeployState
  const progress = deployProgress(state, now)
  const request = state.request
  const data = {id: chosen, request, done: progress.done, ...summaryData({progress, stop: keys.stop, gaveUp: false, elapsedMs: deployElapsedMs(progress, request, keys.stop, now)})}
  return {data, progress}
}

/**
 * How long a deploy ran: until now while it runs; once done, until its last start, finish or stop
 * (or its deadline when nothing ever started), so a deploy read an hour later does not say it took
 * an hour.
 */
export function deployElapsedMs(progress: DeployProgress, request: DeployRequest, stop: DeployStop | undefined, now: Date): number {
  const requested = Date.parse(request.requestedAt)
  if (!progress.done) return now.getTime() - requested
  // A stop ends the deploy only for nodes it kept from starting (a cancel after the end does not).
  const stopped = progress.counts.skipped + progress.counts['timed-out'] > 0 ? stop?.at : undefined
  const times = [...progress.nodes.flatMap((n) => [n.status?.startedAt, n.status?.finishedAt]), stopped]
    .map((t) => (typeof t === 'string' ? Date.parse(t) : NaN))
    .filter((t) => Number.isFinite(t) && t >= requested && t <= now.getTime())
  const end = times.length > 0 ? Math.max(...times) : Math.min(now.getTime(), Date.parse(request.deadline))
  return Math.max(0, end - requested)
}

export interface DeployCancelData {
  id: string
  /** The stop that stands (null: the deploy finished without one and nothing was written). */
  stop: DeployStop | null
  /** False when the deploy had stopped or finished already (nothing was written). */
  written: boolean
  /** True when every node had finished already (ok, failed, lost or timed out): nothing to cancel. */
  finished: boolean
  /** The finished deploy's counts (null unless finished). */
  counts: DeployProgress['counts'] | null
  /** Nodes still running: they finish their run. */
  running: string[]
  /** Nodes that had not started and now never will. */
  notStarted: string[]
}

/**
 * Writes the deploy's stop key (reason: cancelled) unless it has one; idempotent. A deploy whose
 * nodes have all finished is left alone: a stop key written then would read as if the deploy had
 * been cut short (deploy:status would say "no further node starts: cancelled").
 */
export async function cancelDeploy(store: RegistryStore, project: string, id: string, now: Date = new Date(), env: NodeJS.ProcessEnv = process.env): Promise<DeployCancelData> {
  const keys = await readDeploy(store, project, id)
  const before = deployProgress(keys.state() as DeployState, now)
  if (before.done) return {id, stop: keys.stop ?? null, written: false, finished: true, counts: before.counts, running: [], notStarted: []}
  const {stop, written} = keys.stop ? {stop: keys.stop, written: false} : await stopDeploy(store, project, id, 'cancelled', now, env)
  const after = await readDeploy(store, project, id)
  const progress = deployProgress(after.state() as DeployState, now)
  return {
    id,
    stop,
    written,
    finished: false,
    counts: null,
    running: progress.nodes.filter((e) => e.outcome === 'running').map((e) => e.node),
    notStarted: progress.nodes.filter((e) => e.outcome === 'skipped' || e.outcome === 'timed-out' || e.outcome === 'waiting').map((e) => e.node),
  }
}
