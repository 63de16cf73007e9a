// The attributes chef-solo gets: the node's dna plus the paper's collect-services result, where each
// service this node depends on or offers runs, and what this node offers.
import type {RegistryView} from '../registry/view.js'

export interface ServiceLocation {
  node: string
  group: string
  address: string
  port?: number
}

export interface AttributesInput {
  dna: Record<string, unknown>
  node: string
  group: string
  address: string
  offers: ReadonlyArray<{name: string; port?: number}>
  dependsOn: readonly string[]
}

export function buildAttributes(input: AttributesInput, view: RegistryView): Record<string, unknown> {
  // Entries, then Object.fromEntries: a service named like an Object.prototype key stays a key.
  const services: Array<[string, ServiceLocation[]]> = []
  const names = [...new Set([...input.dependsOn, ...input.offers.map((s) => s.name)])].sort()
  for (const name of names) {
    const where: ServiceLocation[] = view.where(name).map((r) => ({node: r.node, group: r.group, address: r.address, ...(r.port === undefined ? {} : {port: r.port})}))
    const own = input.offers.find((s) => s.name === name)
    // Like the paper's collect-services: a service this node offers lists this node too, even
    // before its registration has come back through the watch.
    if (own && !where.some((w) => w.node === input.node)) {
      where.push({node: input.node, group: input.group, address: input.address, ...(own.port === undefined ? {} : {port: own.port})})
      where.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
    }
    services.push([name, where])
  }
  const available = Object.fromEntries(input.offers.map((s) => [s.name, true]))
  return {...input.dna, muster: {node: input.node, group: input.group, revision: view.revision, services: Object.fromEntries(services), available}}
}

/**
 * Has every live node that depends on one of `services` finished a successful provision that
 * reflects revision `since`? Returns the nodes still holding on (empty when all have let go).
 */
export function dependentsHoldingOn(view: RegistryView, services: readonly string[], since: number, self: string): string[] {
  const holding: string[] = []
  for (const [node, record] of view.nodes) {
    if (node === self) continue
    if (!record.dependsOn.some((s) => services.includes(s))) continue
    // provision.revision only moves on success, so a later failure does not undo having let go.
    if (record.provision.revision >= since) continue
    holding.push(node)
  }
  return holding.sort()
}
