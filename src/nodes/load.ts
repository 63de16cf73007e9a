// Finds and reads the nodes file: --nodes, else MUSTER_NODES, else nodes.json / nodes.yaml /
// nodes.yml in the working directory.
import {closeSync, constants, existsSync, fstatSync, openSync, readSync, statSync} from 'node:fs'
import {join, relative, isAbsolute} from 'node:path'

import {NodesFileError, UserError} from '../errors.js'
import {selectEnvironment} from './environments.js'
import type {NodesFile} from './model.js'
import {parseSource} from './source.js'
import {validateNodes} from './validate.js'

export const NODES_FILE_NAMES = ['nodes.json', 'nodes.yaml', 'nodes.yml'] as const

export interface LoadOptions {
  cwd: string
  /** Explicit path from --nodes; falls back to MUSTER_NODES. */
  path?: string | undefined
  env?: NodeJS.ProcessEnv
  /** The environment to resolve the groups in (--env or MUSTER_ENV; the file's default when absent). */
  environment?: string | undefined
}

/** The largest nodes file muster reads (documented in the README); a bigger one is refused unread. */
export const MAX_NODES_FILE_BYTES = 16 * 1024 * 1024

export function findNodesFile(options: LoadOptions): string {
  if (options.path === '') {
    throw new UserError('--nodes was given an empty path', {hint: 'Give the nodes file\'s path (--nodes nodes.yaml), or leave --nodes out to use nodes.json or nodes.yaml here.'})
  }
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
  const name = shown.startsWith('..') ? path : shown
  const result = validateNodes(parseSource(name, readNodesText(path, name)))
  if (!result.ok) throw new NodesFileError(result.diagnostics)
  return selectEnvironment(result.nodes, options.environment)
}

const kindOf = (stats: import('node:fs').Stats): string =>
  stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a pipe' : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : stats.isSocket() ? 'a socket' : 'not a regular file'

/**
 * The nodes file's text: a regular file of at most MAX_NODES_FILE_BYTES, in UTF-8. Anything else is
 * refused before it is read whole (`--nodes /dev/zero` would never end).
 */
export function readNodesText(path: string, shown: string): string {
  const refuse = (what: string, hint: string): UserError => new UserError(`nodes file ${shown} ${what}`, {hint})
  const notRegular = (stats: import('node:fs').Stats): UserError => refuse(`is ${kindOf(stats)}`, 'Point --nodes or MUSTER_NODES at a regular file.')
  const unreadable = (error: unknown): unknown => {
    const code = (error as NodeJS.ErrnoException | null)?.code
    if (code === 'EACCES' || code === 'EPERM') return refuse('is not readable: permission denied', 'Give your user read access to it.')
    if (code === 'ENAMETOOLONG') return refuse('has a name too long for the file system', 'Check the path given with --nodes or MUSTER_NODES.')
    if (code === 'ELOOP') return refuse('is a symlink loop', 'Check the path given with --nodes or MUSTER_NODES.')
    // Any other OS error (EINVAL from a /proc file, EIO from a failing disk) is the machine's.
    if (typeof code === 'string') return refuse(`could not be read (${code})`, 'Point --nodes or MUSTER_NODES at a regular file you can read.')
    return error
  }
  let before: import('node:fs').Stats
  try {
    before = statSync(path)
  } catch (error) {
    throw unreadable(error)
  }
  if (!before.isFile()) throw notRegular(before)
  const tooBig = (): UserError => refuse(`is larger than ${MAX_NODES_FILE_BYTES / 1024 / 1024} MiB, the most muster reads`, 'Split the fleet into several nodes files, or remove what the groups do not need.')
  if (before.size > MAX_NODES_FILE_BYTES) throw tooBig()
  // O_NONBLOCK: should the path have become a pipe since the check, opening it must not hang.
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    throw unreadable(error)
  }
  let bytes: Buffer
  try {
    const stats = fstatSync(fd)
    if (!stats.isFile()) throw notRegular(stats)
    // Read one byte past the limit: a file that grew since stat is still caught.
    const buffer = Buffer.alloc(Math.min(stats.size, MAX_NODES_FILE_BYTES) + 1)
    let length = 0
    try {
      for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null)
    } catch (error) {
      throw unreadable(error)
    }
    if (length > MAX_NODES_FILE_BYTES) throw tooBig()
    // A file that says it is empty yet has bytes is a kernel pseudo-file (/proc, /sys), not a nodes file.
    if (stats.size === 0 && length > 0) throw refuse('reports a size of 0 but has content (a /proc or /sys file?)', 'Point --nodes or MUSTER_NODES at a regular file.')
    bytes = buffer.subarray(0, length)
  } finally {
    closeSync(fd)
  }
  try {
    return new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(bytes)
  } catch {
    const offset = firstInvalidUtf8(bytes)
    const lineStart = bytes.lastIndexOf(0x0a, offset - 1) + 1
    let line = 1
    for (let i = bytes.indexOf(0x0a); i !== -1 && i < offset; i = bytes.indexOf(0x0a, i + 1)) line++
    const column = bytes.subarray(lineStart, offset).toString('utf8').length + 1
    throw new NodesFileError([
      {
        file: shown,
        position: {line, column},
        path: [],
        message: `byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')} is not UTF-8; save the file as UTF-8`,
      },
    ])
  }
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] ?? 0
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0
    if (length === 0 || i + length > bytes.length) return i
    if (length > 1) {
      const decoded = bytes.subarray(i, i + length)
      try {
        new TextDecoder('utf-8', {fatal: true}).decode(decoded)
      } catch {
        return i
      }
    }
    i += length
  }
  return bytes.length
}
