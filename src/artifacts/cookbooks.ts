// The cookbooks a group's image depends on, and their hash: the cookbooks its run list names, plus
// what they `depends` on in metadata.rb (and metadata.json), transitively. A change in a cookbook
// outside that closure rebakes nothing; a change inside it rebakes the group (the hash is a bake
// trigger and the image's muster:cookbooks-hash tag).
//
// Chef (11 and later) loads only the cookbooks of the expanded run list and their dependencies, so
// the closure is what shapes the image. Where muster cannot tell what a run list needs (a `role[…]`
// entry, whose run list lives outside the nodes file), the hash covers every cookbook.
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'

import type {Group} from '../nodes/model.js'
import {sha256} from './json.js'

/** One cookbook as found under cookbooks/: its folder, its files and what its metadata says it depends on. */
export interface Cookbook {
  /** Folder name under cookbooks/. */
  dir: string
  /** `name` from its metadata, when it says one (Chef finds a cookbook by that name). */
  metadataName?: string
  depends: string[]
  /** Path relative to the cookbook's folder → content, sorted by path. */
  files: Array<[string, string]>
}

export interface CookbookTree {
  cookbooks: Cookbook[]
  /** Files directly in cookbooks/ (a README): uploaded with the rest, so part of every hash. */
  looseFiles: Array<[string, string]>
}

/** The cookbook a run list entry names: `recipe[apache2::mod_ssl@1.0]` → apache2; undefined for a role or an unreadable entry. */
export function cookbookOfEntry(entry: string): string | undefined {
  const trimmed = entry.trim()
  const bracketed = /^(\w+)\[(.*)\]$/.exec(trimmed)
  // Chef also takes a bare recipe name ("apache2::mod_ssl") as a recipe.
  if (bracketed && bracketed[1] !== 'recipe') return undefined
  const recipe = (bracketed ? (bracketed[2] ?? '') : trimmed).split('@')[0] ?? ''
  const cookbook = recipe.split('::')[0]?.trim()
  return cookbook ? cookbook : undefined
}

/** `depends 'x'`, `depends "x", "~> 1.0"`, `depends('x')` in metadata.rb (comments ignored). */
export function parseMetadataRb(text: string): {name?: string; depends: string[]} {
  const code = text
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .join('\n')
  const depends = [...code.matchAll(/^\s*depends\s*\(?\s*['"]([^'"]+)['"]/gm)].map((m) => m[1] as string)
  const name = /^\s*name\s*\(?\s*['"]([^'"]+)['"]/m.exec(code)?.[1]
  return name === undefined ? {depends} : {name, depends}
}

/** `dependencies` (an object of name → constraint) and `name` in metadata.json; a malformed file gives nothing. */
export function parseMetadataJson(text: string): {name?: string; depends: string[]} {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return {depends: []}
  }
  if (typeof parsed !== 'object' || parsed === null) return {depends: []}
  const {name, dependencies} = parsed as {name?: unknown; dependencies?: unknown}
  const depends = typeof dependencies === 'object' && dependencies !== null && !Array.isArray(dependencies) ? Object.keys(dependencies) : []
  return typeof name === 'string' ? {name, depends} : {depends}
}

/**
 * The cookbooks (folder names) a run list needs, transitively; `all` when some entry cannot be
 * followed (a role), and the names of needed cookbooks the tree does not have (fetched from
 * elsewhere, or a typo: muster does not judge, it hashes the name).
 */
export function cookbookClosure(runList: readonly string[], tree: CookbookTree): {all: boolean; dirs: string[]; missing: string[]} {
  const byName = new Map<string, Cookbook>()
  for (const cookbook of tree.cookbooks) byName.set(cookbook.dir, cookbook)
  // A metadata name wins over a folder of that name: it is the one Chef resolves.
  for (const cookbook of tree.cookbooks) if (cookbook.metadataName) byName.set(cookbook.metadataName, cookbook)
  const dirs = new Set<string>()
  const missing = new Set<string>()
  const queue: string[] = []
  for (const entry of runList) {
    const cookbook = cookbookOfEntry(entry)
    if (cookbook === undefined) return {all: true, dirs: tree.cookbooks.map((c) => c.dir).sort(), missing: []}
    queue.push(cookbook)
  }
  const seen = new Set<string>()
  while (queue.length > 0) {
    const name = queue.shift() as string
    if (seen.has(name)) continue
    seen.add(name)
    const cookbook = byName.get(name)
    if (!cookbook) {
      missing.add(name)
      continue
    }
    dirs.add(cookbook.dir)
    queue.push(...cookbook.depends)
  }
  return {all: false, dirs: [...dirs].sort(), missing: [...missing].sort()}
}

/** The hash of a group's cookbooks: the closure's files (paths and contents), the missing names, the loose files. */
export function cookbooksHash(runList: readonly string[], tree: CookbookTree): string {
  const closure = cookbookClosure(runList, tree)
  const parts: string[] = []
  for (const [path, content] of tree.looseFiles) parts.push(`file:${path}`, content)
  const byDir = new Map(tree.cookbooks.map((c) => [c.dir, c]))
  for (const dir of closure.dirs) {
    for (const [path, content] of byDir.get(dir)?.files ?? []) parts.push(`cookbook:${dir}/${path}`, content)
  }
  for (const name of closure.missing) parts.push(`missing:${name}`)
  return sha256(...parts).slice(0, 16)
}

/** The group's run list as Chef sees it in its role: run_list, then post_run_list. */
export const groupRunList = (group: Group): string[] => [...group.run_list, ...group.post_run_list]

/** Reads cookbooks/ (no cookbooks folder: an empty tree). */
export function readCookbookTree(dir: string): CookbookTree {
  const tree: CookbookTree = {cookbooks: [], looseFiles: []}
  if (!existsSync(dir)) return tree
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name)
    if (!isDirectory(full)) {
      tree.looseFiles.push([name, readBytes(full)])
      continue
    }
    const files = readFiles(full)
    const metadata = mergeMetadata(files)
    tree.cookbooks.push({dir: name, ...metadata, files})
  }
  return tree
}

function mergeMetadata(files: ReadonlyArray<[string, string]>): {metadataName?: string; depends: string[]} {
  const rb = files.find(([path]) => path === 'metadata.rb')
  const json = files.find(([path]) => path === 'metadata.json')
  const fromRb = rb ? parseMetadataRb(rb[1]) : {depends: []}
  const fromJson = json ? parseMetadataJson(json[1]) : {depends: []}
  const depends = [...new Set([...fromRb.depends, ...fromJson.depends])]
  const name = fromRb.name ?? fromJson.name
  return name === undefined ? {depends} : {metadataName: name, depends}
}

/** A folder, or a symlink to one (followed, as Packer's upload follows it). */
function isDirectory(path: string): boolean {
  return statSync(path).isDirectory()
}

/** latin1 maps every byte to one character: a binary file (an image in files/) hashes exactly. */
const readBytes = (path: string): string => readFileSync(path, 'latin1')

/** Every file below dir, path relative to dir ('/'-separated) → content, sorted by path. */
function readFiles(dir: string): Array<[string, string]> {
  const files: Array<[string, string]> = []
  const walk = (d: string, prefix: string): void => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name)
      const path = prefix ? `${prefix}/${name}` : name
      if (isDirectory(full)) walk(full, path)
      else files.push([path, readBytes(full)])
    }
  }
  walk(dir, '')
  return files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}
