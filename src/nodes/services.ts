// Services and dependencies, read from resolved groups. Pure: no I/O, no registry.
//
// A group runs service S when its resolved run list (run_list, then post_run_list) holds
// `recipe[C::S]` and C is a service cookbook: one named `*-service` (the paper's
// `seatgeek-service`), or one listed in the group's `service_cookbooks`. A cookbook's `default`
// recipe is not a service, and neither is `delete-S` (the paper's decommission convention: it is
// what runs when S leaves a node).
//
// A node depends on its group's `depends_on` plus the `depends_on` of every service it runs. A
// group may depend on a service it runs itself (its nodes then react to their peers of that
// service coming and going); that is kept, not dropped.
import {BASE, type Group, type NodesFile} from './model.js'

export interface ServiceRef {
  /** S, the recipe name: also the registry's key segment. */
  name: string
  /** C, the service cookbook. */
  cookbook: string
  /** `recipe[C::S]`, without any `@version` the run list pins. */
  recipe: string
  port?: number
  health_check?: string
}

/** `recipe[C::S]` or `recipe[C::S@1.2]` (run lists are normalised: `recipe[C]` is `recipe[C::default]`). */
const RECIPE = /^recipe\[([^\]:@]+)::([^\]@]+)(?:@[^\]]+)?\]$/

export function isServiceCookbook(group: Group, cookbook: string): boolean {
  return cookbook.endsWith('-service') || group.service_cookbooks.includes(cookbook)
}

/**
 * The services a group runs, in run-list order, each once. When two service cookbooks have a
 * recipe of the same name, the first in the run list names the service.
 */
export function servicesOf(group: Group): ServiceRef[] {
  const seen = new Set<string>()
  const refs: ServiceRef[] = []
  for (const item of [...group.run_list, ...group.post_run_list]) {
    const match = RECIPE.exec(item)
    if (!match) continue
    const [, cookbook = '', name = ''] = match
    if (name === 'default' || name.startsWith('delete-') || !isServiceCookbook(group, cookbook) || seen.has(name)) continue
    seen.add(name)
    const ref: ServiceRef = {name, cookbook, recipe: `recipe[${cookbook}::${name}]`}
    const spec = group.services[name]
    if (spec?.port !== undefined) ref.port = spec.port
    if (spec?.health_check !== undefined) ref.health_check = spec.health_check
    refs.push(ref)
  }
  return refs
}

/**
 * What a group's nodes depend on: its own `depends_on` plus the `depends_on` of every service it
 * runs, each once, sorted. Services the group runs itself stay in when declared.
 */
export function dependenciesOf(group: Group): string[] {
  const all = new Set(group.depends_on)
  for (const service of servicesOf(group)) for (const name of group.services[service.name]?.depends_on ?? []) all.add(name)
  return [...all].sort()
}

/** Service name → the groups that run it (file order), __base__ left out; keys sorted. */
export function serviceIndex(nodes: NodesFile): Map<string, string[]> {
  const index = new Map<string, string[]>()
  for (const group of nodes.groups.values()) {
    if (group.name === BASE) continue
    for (const service of servicesOf(group)) {
      const groups = index.get(service.name)
      if (groups) groups.push(group.name)
      else index.set(service.name, [group.name])
    }
  }
  return new Map([...index].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
