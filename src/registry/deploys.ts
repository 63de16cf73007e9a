// The deploy protocol (`instance:deploy`), in one place: the keys a rollout lives under, the JSON
// values behind them, their defensive parsing, and the pure reading of a rollout's progress that
// the CLI (following it) and the agents (deciding whether to take a slot) both use.
//
//   deploys/ID                  the request, written by the CLI once every release is uploaded
//   groups/GROUP/release        the group's current release: what a node that boots later converges
//   rollout/ID/slots/K          one of the request's N slots (K = 0..N-1), created if absent on the
//                               holding node's lease: a lease-backed semaphore, so a dead node's slot
//                               comes back when its lease expires
//   rollout/ID/nodes/NODE       a node's progress (waiting|running|ok|failed); `running` names the
//                               lease of the node's slot, so a node that died mid-run reads as failed
//   rollout/ID/stop             written once: no further slot is handed out (cancelled, too many
//                               failures, timed out); a slot is claimed only in a transaction that
//                               also checks this key is absent
//
// Why the rollout's keys are not under deploys/ID/: etcd's RBAC grants key ranges and has no deny.
// Agents must write their progress but must never write a deploy request (a compromised node could
// otherwise roll the fleet back to any release in the bucket), so the two live under prefixes that
// registry:init can grant apart: operators write deploys/ and groups/, agents only rollout/.
// Something that follows a rollout watches both deploysPrefix and rolloutPrefix (or the project's).
//
// A release is content-addressed. Its manifest (JSON, see ReleaseManifest) is stored at
// s3://BUCKET/muster/PROJECT/releases/GROUP/DIGEST.json, where DIGEST is the manifest's sha256;
// the cookbooks tarball it names is at s3://BUCKET/muster/PROJECT/cookbooks/SHA256.tgz, so an
// unchanged cookbook set is never uploaded twice.
import {isSegment, projectPrefix} from './keys.js'
import {type Json, object} from './records.js'

export const deploysPrefix = (project: string): string => `${projectPrefix(project)}deploys/`
export const deployKey = (project: string, id: string): string => `${deploysPrefix(project)}${id}`
export const rolloutsPrefix = (project: string): string => `${projectPrefix(project)}rollout/`
export const rolloutPrefix = (project: string, id: string): string => `${rolloutsPrefix(project)}${id}/`
export const rolloutSlotsPrefix = (project: string, id: string): string => `${rolloutPrefix(project, id)}slots/`
export const rolloutSlotKey = (project: string, id: string, slot: number): string => `${rolloutSlotsPrefix(project, id)}${slot}`
export const rolloutNodesPrefix = (project: string, id: string): string => `${rolloutPrefix(project, id)}nodes/`
export const rolloutNodeKey = (project: string, id: string, node: string): string => `${rolloutNodesPrefix(project, id)}${node}`
export const rolloutStopKey = (project: string, id: string): string => `${rolloutPrefix(project, id)}stop`
export const groupReleaseKey = (project: string, group: string): string => `${projectPrefix(project)}groups/${group}/release`

/** A deploy id sorts by time: YYYYMMDDTHHMMSSZ-xxxxxx (6 random hex digits). */
export const DEPLOY_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/

export function newDeployId(now: Date, random: () => number = Math.random): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  const suffix = Math.floor(random() * 0x1000000).toString(16).padStart(6, '0')
  return `${stamp}-${suffix}`
}

/** Where one group's release is and how to check it. */
export interface ReleaseRef {
  /** sha256 (hex) of the manifest's bytes: the release's name. */
  digest: string
  /** s3://BUCKET/KEY of the manifest. */
  url: string
  /** sha256 (hex) of the bytes at url: equal to digest (kept apart so the check reads plainly). */
  sha256: string
}

/** The release manifest: everything a node of the group needs to converge, bar the cookbooks' bytes. */
export interface ReleaseManifest {
  format: 1
  project: string
  group: string
  /** The Chef role, as roles/GROUP.json holds it. */
  role: Record<string, unknown>
  /** The group's dna, as dna/asg/GROUP.json holds it. */
  dna: Record<string, unknown>
  /** The agent's settings for the group: its services (name, cookbook, port) and what it depends on. */
  agent: {services: Array<{name: string; cookbook: string; port?: number; health_check?: string}>; dependsOn: string[]}
  /** The project's cookbooks/ as one gzipped tarball (absent when the project has none). */
  cookbooks: {url: string; sha256: string; bytes: number} | null
  /**
   * With environments in the nodes file: every environment's Chef environment (environments/ENV.json),
   * whichever one the release was built for, so its bytes (its digest) are the same in all of them
   * and production can roll out the release staging ran. Absent without environments.
   */
  environments?: Record<string, Record<string, unknown>>
  createdAt: string
}

export interface DeployRequest {
  id: string
  groups: string[]
  /** Slots: at most n nodes provision at once. */
  n: number
  /** No further slot is handed out once more than maxErrors nodes have failed. */
  maxErrors: number
  releases: Record<string, ReleaseRef>
  /** The nodes targeted when the request was written, per group (later nodes converge at boot). */
  targets: Record<string, string[]>
  requestedAt: string
  requestedBy: string
  /** ISO time after which no slot is handed out and nodes still waiting count as failed. */
  deadline: string
}

export type DeployNodeState = 'waiting' | 'running' | 'ok' | 'failed'

export interface DeployNodeStatus {
  node: string
  group: string
  state: DeployNodeState
  startedAt: string | null
  finishedAt: string | null
  /** On failure: what went wrong and the last lines of the provision log. */
  message: string | null
  /** While running: the lease holding the node's slot (the node is lost when it expires). */
  lease: string | null
}

export type DeployStopReason = 'cancelled' | 'max-errors' | 'timeout'

export interface DeployStop {
  reason: DeployStopReason
  at: string
  by: string
}

// --- parsing: every value comes from a registry any node can write, so shapes are checked ---


const HEX64 = /^[0-9a-f]{64}$/
const S3_URL = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[A-Za-z0-9!_.*'()/-]{1,1024}$/
const isString = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max
const isTime = (v: unknown): v is string => isString(v, 40) && !Number.isNaN(Date.parse(v))
const isCount = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
const isSegmentList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 100_000 && v.every((s) => typeof s === 'string' && isSegment(s))

export function isReleaseRef(v: unknown): v is ReleaseRef {
  if (typeof v !== 'object' || v === null) return false
  const r = v as Json
  return isString(r.digest) && HEX64.test(r.digest) && isString(r.sha256) && r.sha256 === r.digest && isString(r.url) && S3_URL.test(r.url)
}

export function parseReleaseRef(text: string): ReleaseRef | undefined {
  const value = object(text)
  return isReleaseRef(value) ? {digest: value.digest, url: value.url, sha256: value.sha256} : undefined
}

export function parseDeployRequest(id: string, text: string): DeployRequest | undefined {
  const v = object(text)
  if (!v || v.id !== id || !DEPLOY_ID.test(id)) return undefined
  if (!isSegmentList(v.groups) || v.groups.length === 0) return undefined
  if (!isCount(v.n, 100_000) || v.n < 1 || !isCount(v.maxErrors, 100_000)) return undefined
  if (!isTime(v.requestedAt) || !isTime(v.deadline) || !isString(v.requestedBy, 256)) return undefined
  const releases = v.releases as Json | undefined
  const targets = v.targets as Json | undefined
  if (typeof releases !== 'object' || releases === null || typeof targets !== 'object' || targets === null) return undefined
  for (const group of v.groups) {
    if (!isReleaseRef(releases[group]) || !isSegmentList(targets[group])) return undefined
  }
  const groups = v.groups
  return {
    id,
    groups,
    n: v.n,
    maxErrors: v.maxErrors,
    releases: Object.fromEntries(groups.map((g) => [g, releases[g] as ReleaseRef])),
    targets: Object.fromEntries(groups.map((g) => [g, targets[g] as string[]])),
    requestedAt: v.requestedAt,
    requestedBy: v.requestedBy,
    deadline: v.deadline,
  }
}

const STATES: readonly DeployNodeState[] = ['waiting', 'running', 'ok', 'failed']

export function parseDeployNodeStatus(node: string, text: string): DeployNodeStatus | undefined {
  const v = object(text)
  if (!v || v.node !== node || !isString(v.group, 128) || !isSegment(v.group)) return undefined
  if (!STATES.includes(v.state as DeployNodeState)) return undefined
  const nullableTime = (x: unknown): x is string | null => x === null || isTime(x)
  if (!nullableTime(v.startedAt) || !nullableTime(v.finishedAt)) return undefined
  if (!(v.message === null || isString(v.message, 16_384)) || !(v.lease === null || isString(v.lease, 32))) return undefined
  return {node, group: v.group, state: v.state as DeployNodeState, startedAt: v.startedAt, finishedAt: v.finishedAt, message: v.message, lease: v.lease}
}

export function parseDeployStop(text: string): DeployStop | undefined {
  const v = object(text)
  if (!v || !['cancelled', 'max-errors', 'timeout'].includes(v.reason as string) || !isTime(v.at) || !isString(v.by, 256)) return undefined
  return {reason: v.reason as DeployStopReason, at: v.at, by: v.by}
}

/** What a key under deploys/ or rollout/ names, or undefined for anything else. */
export type ParsedDeployKey =
  | {kind: 'request'; id: string}
  | {kind: 'slot'; id: string; slot: number}
  | {kind: 'node'; id: string; node: string}
  | {kind: 'stop'; id: string}

export function parseDeployKey(project: string, key: string): ParsedDeployKey | undefined {
  const requests = deploysPrefix(project)
  if (key.startsWith(requests)) {
    const id = key.slice(requests.length)
    return DEPLOY_ID.test(id) ? {kind: 'request', id} : undefined
  }
  const rollouts = rolloutsPrefix(project)
  if (!key.startsWith(rollouts)) return undefined
  const parts = key.slice(rollouts.length).split('/')
  const id = parts[0] ?? ''
  if (!DEPLOY_ID.test(id)) return undefined
  if (parts.length === 2 && parts[1] === 'stop') return {kind: 'stop', id}
  if (parts.length === 3 && parts[1] === 'slots' && /^(0|[1-9]\d{0,5})$/.test(parts[2] ?? '')) return {kind: 'slot', id, slot: Number(parts[2])}
  if (parts.length === 3 && parts[1] === 'nodes' && isSegment(parts[2] ?? '')) return {kind: 'node', id, node: parts[2] as string}
  return undefined
}

// --- the pure reading of a rollout ---

export interface DeployState {
  request: DeployRequest
  /** Per node: its last reported status (absent: not reported yet). */
  statuses: ReadonlyMap<string, DeployNodeStatus>
  /** Leases currently holding a slot. */
  slotLeases: ReadonlySet<string>
  stop: DeployStop | undefined
}

export type NodeOutcome = DeployNodeState | 'lost' | 'timed-out' | 'skipped'

export interface DeployProgress {
  nodes: Array<{node: string; group: string; outcome: NodeOutcome; status: DeployNodeStatus | undefined}>
  counts: Record<NodeOutcome, number>
  failures: number
  /** True when nothing more will happen: every node finished, or no slot will be handed out and none is held. */
  done: boolean
  /** True when every targeted node reported ok. */
  ok: boolean
}

/** The one rule for a dead node: it reports running on a lease that no longer holds a slot (its lease expired). */
export function isLost(lease: string | null, slotLeases: ReadonlySet<string>): boolean {
  return lease === null || !slotLeases.has(lease)
}

/**
 * One view of a rollout from its keys: a node whose `running` status names a lease that no longer
 * holds a slot is lost (it died mid-run, so it counts as failed); once the rollout has stopped or
 * passed its deadline, nodes that never started are skipped or timed out.
 */
export function deployProgress(state: DeployState, now: Date): DeployProgress {
  const {request, statuses, slotLeases, stop} = state
  const pastDeadline = now.getTime() > Date.parse(request.deadline)
  const halted = stop !== undefined || pastDeadline
  const counts: Record<NodeOutcome, number> = {waiting: 0, running: 0, ok: 0, failed: 0, lost: 0, 'timed-out': 0, skipped: 0}
  const nodes: DeployProgress['nodes'] = []
  for (const group of request.groups) {
    for (const node of request.targets[group] ?? []) {
      const status = statuses.get(node)
      let outcome: NodeOutcome = status?.state ?? 'waiting'
      if (outcome === 'running' && isLost(status?.lease ?? null, slotLeases)) outcome = 'lost'
      if (outcome === 'waiting' && halted) outcome = stop === undefined || stop.reason === 'timeout' ? 'timed-out' : 'skipped'
      counts[outcome] += 1
      nodes.push({node, group, outcome, status})
    }
  }
  const failures = counts.failed + counts.lost
  const finished = counts.waiting === 0 && counts.running === 0
  return {nodes, counts, failures, done: finished, ok: nodes.length > 0 && counts.ok === nodes.length}
}

/**
 * Whether a node may take a slot now, given the failures so far (DeployProgress.failures, or the
 * deploy feed's running count of them); the stop key is checked again inside the claim's transaction.
 */
export function mayTakeSlot(state: Pick<DeployState, 'request' | 'stop'>, failures: number, now: Date): boolean {
  return state.stop === undefined && now.getTime() <= Date.parse(state.request.deadline) && failures <= state.request.maxErrors
}
