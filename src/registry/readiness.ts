// What a blue-green update decides from one registry snapshot, as pure functions: which of the new
// Auto Scaling group's instances have registered every service of their group (the agent registers
// a service only while its health check passes, so registered means healthy), and which of the old
// group's nodes have let go of everything (retired). The registry is writable by every node, so a
// registration counts only when the node's record says it is of the group being updated.
import type {RegistryRead} from './read.js'

export interface NodeShortfall {
  node: string
  /** Why the node is not ready: no node record yet, a record of another group, or services missing. */
  reason: 'not registered' | 'other group' | 'services missing'
  /** The group's services the registry does not (yet) hold for this node. */
  missing: string[]
}

export interface Readiness {
  ready: string[]
  waiting: NodeShortfall[]
}

/**
 * Every instance is ready when its node record is of `group` and every one of `services` has a
 * key services/SERVICE/NODE. An empty instance list is never ready: an ASG that reports no
 * instance has not started any.
 */
export function newInstancesReady(instances: readonly string[], group: string, services: readonly string[], read: Pick<RegistryRead, 'nodes' | 'services'>): Readiness & {done: boolean} {
  const ready: string[] = []
  const waiting: NodeShortfall[] = []
  for (const node of [...new Set(instances)].sort()) {
    const record = read.nodes.find((n) => n.node === node)
    const offered = new Set(read.services.filter((s) => s.node === node && s.group === group).map((s) => s.service))
    const missing = services.filter((s) => !offered.has(s))
    if (record === undefined) waiting.push({node, reason: 'not registered', missing: [...services]})
    else if (record.group !== group) waiting.push({node, reason: 'other group', missing: [...services]})
    else if (missing.length > 0) waiting.push({node, reason: 'services missing', missing})
    else ready.push(node)
  }
  return {ready, waiting, done: instances.length > 0 && waiting.length === 0}
}

export interface Retirement {
  /** Nodes with no service key left and either no record (the agent stopped) or one that says retired. */
  retired: string[]
  /** Nodes still holding service keys, or whose agent has not yet reported that it drained. */
  holding: Array<{node: string; services: string[]}>
}

/** Which of `nodes` have deregistered every service and drained (the agent reports `retired`). */
export function retirementOf(nodes: readonly string[], read: Pick<RegistryRead, 'nodes' | 'services'>): Retirement & {done: boolean} {
  const retired: string[] = []
  const holding: Array<{node: string; services: string[]}> = []
  for (const node of [...new Set(nodes)].sort()) {
    const services = read.services.filter((s) => s.node === node).map((s) => s.service).sort()
    const record = read.nodes.find((n) => n.node === node)
    if (services.length === 0 && (record === undefined || record.retired !== undefined)) retired.push(node)
    else holding.push({node, services})
  }
  return {retired, holding, done: holding.length === 0}
}

/** "i-1 (not registered: web, api); i-2 (services missing: api)": for progress lines and errors. */
export function describeShortfalls(waiting: readonly NodeShortfall[]): string {
  return waiting.map((w) => `${w.node} (${w.reason}${w.missing.length > 0 ? `: ${w.missing.join(', ')}` : ''})`).join('; ')
}
