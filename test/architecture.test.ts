// The house's rules, checked on the static import graph of src/ (relative and package imports,
// `import type` and literal dynamic imports included): no cycle between the top-level rooms, the
// node side (its rooms and the agent's command entry points) never reaches Pulumi or the EC2/Auto
// Scaling SDKs, and stacks never imports ui.
import {expect} from 'chai'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join, relative, resolve, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src')
const FORBIDDEN_ON_NODE_SIDE = [/^@pulumi\//, /^@aws-sdk\/client-ec2$/, /^@aws-sdk\/client-auto-scaling$/]
const NODE_SIDE = ['nodes', 'artifacts', 'lib', 'registry', 'agent', 'release']
/** The agent's command entry points, and the flags they share: node-side too, with all they reach (base-command.ts included). */
const NODE_SIDE_ENTRY_POINTS = ['commands/agent.ts', 'commands/service/ls.ts', 'commands/node/ls.ts', 'registry-flags.ts', 'base-command.ts']

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name)
    if (statSync(full).isDirectory()) return sourceFiles(full)
    return /\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts') ? [full] : []
  })
}

/** Every module specifier a file names: import/export … from, side-effect imports, import('…'). */
export function specifiers(text: string): string[] {
  const found: string[] = []
  const patterns = [/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.push(match[1] as string)
  return found
}

interface Graph {
  /** file → files it imports (relative imports, resolved). */
  files: Map<string, string[]>
  /** file → packages it imports. */
  packages: Map<string, string[]>
}

function buildGraph(): Graph {
  const files = new Map<string, string[]>()
  const packages = new Map<string, string[]>()
  for (const file of sourceFiles(SRC)) {
    const specs = specifiers(readFileSync(file, 'utf8'))
    files.set(file, specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts')))
    packages.set(file, specs.filter((s) => !s.startsWith('.') && !s.startsWith('node:')))
  }
  return {files, packages}
}

/** The room of a file: its top-level folder under src/, or the file itself when it sits in src/. */
const room = (file: string): string => relative(SRC, file).split(sep)[0] as string

/** The chain of files by which `from` reaches a forbidden package, or undefined. */
function forbiddenReach(graph: Graph, from: string): string[] | undefined {
  const seen = new Set<string>()
  const walk = (file: string, path: string[]): string[] | undefined => {
    if (seen.has(file)) return undefined
    seen.add(file)
    const bad = (graph.packages.get(file) ?? []).find((p) => FORBIDDEN_ON_NODE_SIDE.some((re) => re.test(p)))
    if (bad) return [...path, relative(SRC, file), bad]
    for (const next of graph.files.get(file) ?? []) {
      const found = walk(next, [...path, relative(SRC, file)])
      if (found) return found
    }
    return undefined
  }
  return walk(from, [])
}

/** A cycle among the rooms, as a list of rooms, or undefined. */
function roomCycle(graph: Graph): string[] | undefined {
  const edges = new Map<string, Set<string>>()
  for (const [file, targets] of graph.files) {
    for (const target of targets) {
      if (room(file) === room(target)) continue
      const set = edges.get(room(file)) ?? new Set<string>()
      set.add(room(target))
      edges.set(room(file), set)
    }
  }
  const state = new Map<string, 'open' | 'done'>()
  const visit = (node: string, stack: string[]): string[] | undefined => {
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node]
    if (state.get(node) === 'done') return undefined
    state.set(node, 'open')
    for (const next of edges.get(node) ?? []) {
      const cycle = visit(next, [...stack, node])
      if (cycle) return cycle
    }
    state.set(node, 'done')
    return undefined
  }
  for (const node of edges.keys()) {
    const cycle = visit(node, [])
    if (cycle) return cycle
  }
  return undefined
}

describe('architecture', () => {
  const graph = buildGraph()

  it('reads the import forms it relies on', () => {
    expect(specifiers(`import type {A} from './a.js'\nimport {b} from "b"\nexport {c} from './c.js'\nimport './d.js'\nconst e = await import('./e.js')`)).to.have.members(['./a.js', 'b', './c.js', './d.js', './e.js'])
  })

  it('has no cycle between the top-level folders of src/', () => {
    expect(roomCycle(graph), 'a cycle between rooms').to.equal(undefined)
  })

  for (const side of NODE_SIDE) {
    it(`src/${side} never reaches @pulumi/*, @aws-sdk/client-ec2 or @aws-sdk/client-auto-scaling`, () => {
      for (const file of graph.files.keys()) {
        if (room(file) !== side) continue
        const chain = forbiddenReach(graph, file)
        expect(chain, `${relative(SRC, file)} reaches a forbidden package: ${chain?.join(' → ')}`).to.equal(undefined)
      }
    })
  }

  for (const entry of NODE_SIDE_ENTRY_POINTS) {
    it(`src/${entry} never reaches @pulumi/*, @aws-sdk/client-ec2 or @aws-sdk/client-auto-scaling`, () => {
      const file = join(SRC, entry)
      expect(graph.files.has(file), `src/${entry} exists`).to.equal(true)
      const chain = forbiddenReach(graph, file)
      expect(chain, `src/${entry} reaches a forbidden package: ${chain?.join(' → ')}`).to.equal(undefined)
    })
  }

  it('src/stacks never imports src/ui', () => {
    for (const [file, targets] of graph.files) {
      if (room(file) !== 'stacks') continue
      expect(targets.filter((t) => room(t) === 'ui').map((t) => relative(SRC, t)), relative(SRC, file)).to.deep.equal([])
    }
  })
})
