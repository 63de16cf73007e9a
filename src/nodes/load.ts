// Finds and reads the nodes file: --nodes, else MUSTER_NODES, else nodes.json / nodes.yaml /
// nodes.yml in the working directory.
import {readFileSync, existsSync} from 'node:fs'
import {join, relative, isAbsolute} from 'node:path'

import {NodesFileError, UserError} from '../errors.js'
import type {NodesFile} from './model.js'
import {parseSource} from './source.js'
import {validateNodes} from './validate.js'

export const NODES_FILE_NAMES = ['nodes.json', 'nodes.yaml', 'nodes.yml'] as const

export interface LoadOptions {
  cwd: string
  /** Explicit path from --nodes; falls back to MUSTER_NODES. */
  path?: string | undefined
  env?: NodeJS.ProcessEnv
}

export function findNodesFile(options: LoadOptions): string {
  const explicit = options.path ?? (options.env ?? process.env).MUSTER_NODES
  if (explicit) {
    const full = isAbsolute(explicit) ? explicit : join(options.cwd, explicit)
    if (!existsSync(full)) throw new UserError(`nodes file ${explicit} does not exist`, {hint: 'Check the path given with --nodes or MUSTER_NODES.'})
    return full
  }
  const found = NODES_FILE_NAMES.map((name) => join(options.cwd, name)).filter((p) => existsSync(p))
  if (found.length === 0) {
    throw new UserError(`no nodes file in ${options.cwd}`, {hint: `Create nodes.json (or nodes.yaml) here, or point to one with --nodes PATH or MUSTER_NODES.`})
  }
  if (found.length > 1) {
    throw new UserError(`more than one nodes file in ${options.cwd}: ${found.map((p) => relative(options.cwd, p)).join(', ')}`, {
      hint: 'Keep one of them, or choose with --nodes PATH.',
    })
  }
  return found[0] as string
}

export function loadNodes(options: LoadOptions): NodesFile {
  const path = findNodesFile(options)
  const shown = relative(options.cwd, path) || path
  const text = readFileSync(path, 'utf8')
  const result = validateNodes(parseSource(shown.startsWith('..') ? path : shown, text))
  if (!result.ok) throw new NodesFileError(result.diagnostics)
  return result.nodes
}
