// Checks across groups of the nodes file's services: a dependency on a service that no group runs
// is an error (with its place and a did-you-mean); a dependency cycle is only a warning, since
// every node still converges (each run reacts to the registry as it is).
import {BASE, type NodesFile} from './model.js'
import type {RawGroup} from './schema.js'
import {dependenciesOf, serviceIndex, servicesOf} from './services.js'
import type {KeyPath} from './source.js'

export interface UnknownDependency {
  /** Where the list item is: [group, 'depends_on', i] or [group, 'services', S, 'depends_on', i]. */
  path: KeyPath
  message: string
}

/**
 * Every declared dependency that names a service no group runs. Checked where it is written, so
 * the place is exact: each group's own `depends_on` (__base__'s included, since every group
 * inherits it), and `services.S.depends_on` for each service S that some group runs (metadata of
 * a service that nothing runs has no effect, so it is not checked).
 */
export function unknownDependencies(raw: ReadonlyMap<string, RawGroup>, nodes: NodesFile, didYouMean: (input: string, known: readonly string[]) => string | undefined): UnknownDependency[] {
  const index = serviceIndex(nodes)
  const known = [...index.keys()]
  const problems: UnknownDependency[] = []
  const check = (path: KeyPath, name: string): void => {
    if (index.has(name)) return
    const guess = didYouMean(name, known)
    const message =
      known.length === 0
        ? `no group runs service "${name}"; no group runs any service (a service is recipe[C::S] where cookbook C is named *-service or listed in service_cookbooks)`
        : `no group runs service "${name}"${guess ? `; did you mean "${guess}"?` : ''} (services run: ${known.join(', ')})`
    problems.push({path, message})
  }
  for (const [group, g] of raw) {
    g.depends_on?.forEach((name, i) => check([group, 'depends_on', i], name))
    for (const [service, spec] of Object.entries(g.services ?? {})) {
      if (!index.has(service)) continue
      spec.depends_on?.forEach((name, i) => check([group, 'services', service, 'depends_on', i], name))
    }
  }
  return problems
}

/**
 * Dependency cycles between services, each as [a, b, …, a]: the nodes that run a depend on b, and
 * so on back to a. The nodes that run S depend on everything their group depends on (see
 * dependenciesOf), so two services of one group that depends on both form a cycle too; but a node
 * that runs S and depends on S itself (on its peers) is not a cycle. One
 * (shortest) cycle per strongly connected set of services, starting from its first name in sort
 * order; the cycles sorted by that name.
 */
export function dependencyCycles(nodes: NodesFile): string[][] {
  const edges = new Map<string, Set<string>>()
  for (const group of nodes.groups.values()) {
    if (group.name === BASE) continue
    const dependencies = dependenciesOf(group)
    for (const service of servicesOf(group)) {
      const out = edges.get(service.name) ?? new Set<string>()
      for (const d of dependencies) if (d !== service.name) out.add(d)
      edges.set(service.name, out)
    }
  }
  const next = (s: string): string[] => [...(edges.get(s) ?? [])].sort()
  const cycles: string[][] = []
  for (const component of stronglyConnected([...edges.keys()].sort(), next)) {
    if (component.length < 2) continue
    const members = new Set(component)
    const start = [...component].sort()[0] as string
    // Breadth-first from start, inside the component, back to start: the shortest cycle through it.
    const parent = new Map<string, string>()
    const queue = [start]
    let last: string | undefined
    while (queue.length > 0 && last === undefined) {
      const at = queue.shift() as string
      for (const to of next(at)) {
        if (!members.has(to)) continue
        if (to === start) {
          last = at
          break
        }
        if (!parent.has(to)) {
          parent.set(to, at)
          queue.push(to)
        }
      }
    }
    const path = [start]
    for (let at = last; at !== undefined && at !== start; at = parent.get(at)) path.splice(1, 0, at)
    cycles.push([...path, start])
  }
  return cycles.sort((a, b) => ((a[0] ?? '') < (b[0] ?? '') ? -1 : 1))
}

/** Tarjan's strongly connected components, iterative so deep chains cannot overflow the stack. */
function stronglyConnected(vertices: readonly string[], next: (v: string) => string[]): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const components: string[][] = []
  let counter = 0
  for (const root of vertices) {
    if (index.has(root)) continue
    const work: Array<{v: string; children: string[]; i: number}> = []
    const visit = (v: string): void => {
      index.set(v, counter)
      low.set(v, counter)
      counter++
      stack.push(v)
      onStack.add(v)
      work.push({v, children: next(v), i: 0})
    }
    visit(root)
    while (work.length > 0) {
      const frame = work[work.length - 1] as {v: string; children: string[]; i: number}
      if (frame.i < frame.children.length) {
        const w = frame.children[frame.i++] as string
        if (!index.has(w)) visit(w)
        else if (onStack.has(w)) low.set(frame.v, Math.min(low.get(frame.v) as number, index.get(w) as number))
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent) low.set(parent.v, Math.min(low.get(parent.v) as number, low.get(frame.v) as number))
      if (low.get(frame.v) === index.get(frame.v)) {
        const component: string[] = []
        let w: string | undefined
        do {
          w = stack.pop() as string
          onStack.delete(w)
          component.push(w)
        } while (w !== frame.v)
        components.push(component)
      }
    }
  }
  return components
}
