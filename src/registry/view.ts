// A node's picture of the registry: every service record and node record under the project, as of
// one revision. Pure: the feed (feed.ts) fills it from a snapshot and applies watch events; the
// agent asks it what changed and what its dependencies look like.
import {parseKey, projectPrefix} from './keys.js'
import {type NodeRecord, parseNodeRecord, parseServiceRecord, type ServiceRecord} from './records.js'

/** One key's new value (put) or removal (delete), as etcd reports it. */
export interface KeyEvent {
  type: 'put' | 'delete'
  key: string
  value: string
  /**
   * The key's lease id ('0' for none). Agents write only on a lease; a record without one would
   * outlive any node, so it is ignored (a forged or detached record, e.g. from a compromised node).
   */
  lease?: string
}

export interface ViewChange {
  /** Services that gained, lost or changed a node. */
  services: Set<string>
  /** Nodes whose record appeared, changed or went. */
  nodes: Set<string>
  /** Keys under the prefix that were ignored as malformed or forged. */
  rejected: number
}

export class RegistryView {
  /** service → node → record */
  readonly services = new Map<string, Map<string, ServiceRecord>>()
  readonly nodes = new Map<string, NodeRecord>()
  revision = 0

  constructor(readonly project: string) {}

  /** Applies events in order; returns what they changed. */
  apply(events: readonly KeyEvent[], revision: number): ViewChange {
    const change: ViewChange = {services: new Set(), nodes: new Set(), rejected: 0}
    for (const event of events) this.applyOne(event, change)
    this.revision = Math.max(this.revision, revision)
    return change
  }

  private applyOne(event: KeyEvent, change: ViewChange): void {
    const parsed = parseKey(this.project, event.key)
    if (!parsed) {
      // The deploy protocol's keys (deploys/, rollout/, groups/) and the operators' retire/ keys
      // share the prefix; they are read elsewhere.
      if (event.type === 'put' && !isDeployProtocolKey(this.project, event.key)) change.rejected++
      return
    }
    const leased = event.type === 'delete' || event.lease === undefined || event.lease !== '0'
    if (parsed.kind === 'service') {
      const nodes = this.services.get(parsed.service)
      const before = nodes?.get(parsed.node)
      const record = event.type === 'put' && leased ? parseServiceRecord(event.value, parsed.node) : undefined
      if (event.type === 'put' && !record) change.rejected++
      if (record) {
        if (nodes) nodes.set(parsed.node, record)
        else this.services.set(parsed.service, new Map([[parsed.node, record]]))
      } else if (nodes) {
        nodes.delete(parsed.node)
        if (nodes.size === 0) this.services.delete(parsed.service)
      }
      if (!sameService(before, record)) change.services.add(parsed.service)
      return
    }
    const before = this.nodes.get(parsed.node)
    const record = event.type === 'put' && leased ? parseNodeRecord(event.value, parsed.node) : undefined
    if (event.type === 'put' && !record) change.rejected++
    if (record) this.nodes.set(parsed.node, record)
    else this.nodes.delete(parsed.node)
    if (before !== undefined || record !== undefined) change.nodes.add(parsed.node)
  }

  /** Replaces the whole view with a snapshot; returns the difference (what a missed watch missed). */
  replace(events: readonly KeyEvent[], revision: number): ViewChange {
    const fresh = new RegistryView(this.project)
    const rejected = fresh.apply(events, revision).rejected
    const change: ViewChange = {services: new Set(), nodes: new Set(), rejected}
    for (const name of new Set([...this.services.keys(), ...fresh.services.keys()])) {
      const a = this.services.get(name) ?? new Map<string, ServiceRecord>()
      const b = fresh.services.get(name) ?? new Map<string, ServiceRecord>()
      const differs = a.size !== b.size || [...a].some(([node, record]) => !sameService(record, b.get(node)))
      if (differs) change.services.add(name)
    }
    for (const node of new Set([...this.nodes.keys(), ...fresh.nodes.keys()])) {
      if (JSON.stringify(this.nodes.get(node)) !== JSON.stringify(fresh.nodes.get(node))) change.nodes.add(node)
    }
    this.services.clear()
    for (const [k, v] of fresh.services) this.services.set(k, v)
    this.nodes.clear()
    for (const [k, v] of fresh.nodes) this.nodes.set(k, v)
    this.revision = revision
    return change
  }

  /** The nodes offering `service`, sorted by node id so rendered attributes are stable. */
  where(service: string): ServiceRecord[] {
    return [...(this.services.get(service)?.values() ?? [])].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
  }
}

/** Same node, address and port: the "since" stamp alone is not a change a dependent cares about. */
function sameService(a: ServiceRecord | undefined, b: ServiceRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.group === b.group && a.address === b.address && a.port === b.port
}

function isDeployProtocolKey(project: string, key: string): boolean {
  const rest = key.slice(projectPrefix(project).length)
  return rest.startsWith('deploys/') || rest.startsWith('rollout/') || rest.startsWith('groups/') || rest.startsWith('retire/')
}
