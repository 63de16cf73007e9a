// The JSON values under the registry's keys, and their defensive parsing. Any node can write to
// the registry, so a record is accepted only when its shape is right and it names the node its key
// names; anything else is ignored (and counted by the caller), never trusted into chef attributes.

export interface ServiceRecord {
  node: string
  group: string
  address: string
  port?: number
  /** ISO time the node registered the service. */
  since: string
}

export type ProvisionState = 'pending' | 'running' | 'idle' | 'failed'

export type ProvisionReason = 'boot' | 'dependency' | 'decommission' | 'deploy' | 'config'

export interface ProvisionStatus {
  state: ProvisionState
  /** Result of the last finished run; null before the first one finishes. */
  ok: boolean | null
  reason: ProvisionReason | null
  startedAt: string | null
  finishedAt: string | null
  /** Registry revision the last successful run's attributes reflected (0 before one succeeds). */
  revision: number
  /** On failure: the last lines of the provision log; the retry schedule when one is pending. */
  message: string | null
}

export interface NodeRecord {
  node: string
  group: string
  address: string
  services: string[]
  dependsOn: string[]
  provision: ProvisionStatus
  since: string
  /** Set once the agent has acted on its retire key: services deregistered and drained (an ISO time). */
  retired?: string
}

export function initialProvision(): ProvisionStatus {
  return {state: 'pending', ok: null, reason: null, startedAt: null, finishedAt: null, revision: 0, message: null}
}

export type Json = Record<string, unknown>

/** A JSON object from registry text, or undefined for anything else (bad JSON, arrays, scalars). */
export function object(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined
  } catch {
    return undefined
  }
}

const isString = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 1000 && v.every((s) => isString(s, 128))
const nullable = <T>(v: unknown, check: (x: unknown) => x is T): v is T | null => v === null || check(v)
/**
 * An IPv4/IPv6 address or a DNS name: the address lands in chef attributes and, later, haproxy's
 * config, so nothing else (spaces, newlines, quotes) is accepted from another node.
 */
export const isAddress = (v: unknown): v is string =>
  typeof v === 'string' && v.length <= 253 && (/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v) || /^[0-9A-Fa-f:.]{2,45}$/.test(v) && v.includes(':'))
const isName = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9_.-]{1,128}$/.test(v)
const isTime = (v: unknown): v is string => typeof v === 'string' && v.length <= 40 && !Number.isNaN(Date.parse(v))
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65_535

export function parseServiceRecord(text: string, keyNode: string): ServiceRecord | undefined {
  const o = object(text)
  if (!o || o.node !== keyNode || !isName(o.group) || !isAddress(o.address) || !isTime(o.since)) return undefined
  if (o.port !== undefined && !isPort(o.port)) return undefined
  const record: ServiceRecord = {node: keyNode, group: o.group, address: o.address, since: o.since}
  if (o.port !== undefined) record.port = o.port
  return record
}

const STATES: readonly string[] = ['pending', 'running', 'idle', 'failed']
const REASONS: readonly string[] = ['boot', 'dependency', 'decommission', 'deploy', 'config']

function parseProvision(v: unknown): ProvisionStatus | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const p = v as Json
  if (typeof p.state !== 'string' || !STATES.includes(p.state)) return undefined
  if (!(p.ok === null || typeof p.ok === 'boolean')) return undefined
  if (!(p.reason === null || (typeof p.reason === 'string' && REASONS.includes(p.reason)))) return undefined
  if (typeof p.revision !== 'number' || !Number.isSafeInteger(p.revision) || p.revision < 0) return undefined
  if (!nullable(p.startedAt, (x): x is string => isString(x, 64)) || !nullable(p.finishedAt, (x): x is string => isString(x, 64))) return undefined
  if (!nullable(p.message, (x): x is string => isString(x, 8192))) return undefined
  return {
    state: p.state as ProvisionState,
    ok: p.ok,
    reason: p.reason as ProvisionReason | null,
    startedAt: p.startedAt,
    finishedAt: p.finishedAt,
    revision: p.revision,
    message: p.message,
  }
}

export function parseNodeRecord(text: string, keyNode: string): NodeRecord | undefined {
  const o = object(text)
  if (!o || o.node !== keyNode || !isName(o.group) || !isAddress(o.address) || !isTime(o.since)) return undefined
  if (!isStringList(o.services) || !isStringList(o.dependsOn)) return undefined
  const provision = parseProvision(o.provision)
  if (!provision) return undefined
  const retired = isTime(o.retired) ? {retired: o.retired} : {}
  return {node: keyNode, group: o.group, address: o.address, services: o.services, dependsOn: o.dependsOn, provision, since: o.since, ...retired}
}
