// The one place artifacts reach the disk. Everything is planned first (read-only), so a refusal
// or a --check failure writes nothing at all; each write is atomic (temp file + rename).
import {existsSync, lstatSync, readFileSync, realpathSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join, relative, isAbsolute} from 'node:path'

import {UserError} from '../errors.js'
import {atomicWriteSync, removeStaleTempFiles} from '../lib/atomic-write.js'

/**
 * create: a new file; an existing file with other content is refused (role:create).
 * update: written when missing or different, with a diff (role:update, generated files).
 * ensure: written only when missing; an existing one is the user's (roles made by another verb, templates).
 */
export type WritePolicy = 'create' | 'update' | 'ensure'

export interface Artifact {
  /** Relative to the project root, with forward slashes. */
  path: string
  content: string
  policy: WritePolicy
  /** The group it belongs to, for reports. */
  group?: string
}

export type WriteStatus = 'created' | 'updated' | 'unchanged' | 'kept' | 'missing' | 'stale'

export interface WriteResult {
  path: string
  group?: string
  status: WriteStatus
  /** Unified diff for updated (or, with check, stale) files. */
  diff?: string
}

export interface WriteReport {
  results: WriteResult[]
  /** In check mode: true when every file is present and current. */
  upToDate: boolean
  checked: boolean
}

// jsdiff is loaded only when a file changed: most runs write new or unchanged files.
const require = createRequire(import.meta.url)
const createTwoFilesPatch = (...args: Parameters<typeof import('diff').createTwoFilesPatch>): string =>
  (require('diff') as typeof import('diff')).createTwoFilesPatch(...args)

function readIfExists(path: string): string | undefined {
  // existsSync first: a thrown ENOENT per missing file costs more than the check on a large fleet.
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined
}

/** What a file-system error means for the file the user knows, and what to do about it. */
const ERRNO_WORDS: Record<string, [string, string]> = {
  EISDIR: ['is a directory', 'Move the directory away; muster writes a file there.'],
  ENOTDIR: ['has a file where muster needs a directory', 'Move that file away; muster creates the directories it writes into.'],
  EEXIST: ['has a file where muster needs a directory', 'Move that file away; muster creates the directories it writes into.'],
  EACCES: ['is not accessible: permission denied', 'Give your user write access to it and its directory (or run muster where you may write).'],
  EPERM: ['is not accessible: operation not permitted', 'Give your user write access to it and its directory (or run muster where you may write).'],
  EROFS: ['is on a read-only file system', 'Run muster in a writable checkout.'],
  ENOSPC: ['could not be written: no space left on the device', 'Free some space and run the command again.'],
  EDQUOT: ['could not be written: disk quota exceeded', 'Free some space and run the command again.'],
  ENAMETOOLONG: ['has a name too long for the file system', 'Use a shorter group name.'],
  ELOOP: ['is a symlink loop', 'Remove the symlink.'],
}

/** A file-system error on an artifact as a UserError naming the artifact (never a temp file); other errors unchanged. */
export function artifactFsError(error: unknown, path: string, context = ''): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code
  const words = code === undefined ? undefined : ERRNO_WORDS[code]
  if (!words) return error
  return new UserError(`${path} ${words[0]}${context}`, {hint: words[1], cause: error})
}

/**
 * A template of the project's (templates/…), or muster's bundled default when the project has none.
 * A file-system error on it is the user's: it names the project's path and says what to do.
 */
export function readProjectTemplate(root: string, path: string, bundled: string): string {
  const own = join(root, path)
  try {
    return readFileSync(existsSync(own) ? own : bundled, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | null)?.code
    const words = code === undefined ? undefined : ERRNO_WORDS[code]
    if (!words) throw error
    throw new UserError(`${path} ${words[0]}; muster reads it, so nothing was done`, {
      hint: `It is yours to change: make it a readable file (or remove it to use muster's default), then run the command again.`,
      cause: error,
    })
  }
}

/**
 * Where an artifact path leaves the project through a symlink (the file itself or a directory on
 * its way), so that neither --check's diff nor a write goes through it: a link to ~/.aws/credentials
 * must not end up in a CI log.
 */
function symlinkOutOfProject(root: string, path: string): {link: string; target: string} | undefined {
  const realRoot = realpathSync(root)
  const parts = path.split('/')
  for (let i = 1; i <= parts.length; i++) {
    const link = parts.slice(0, i).join('/')
    let isLink: boolean
    try {
      isLink = lstatSync(join(root, link)).isSymbolicLink()
    } catch {
      return undefined
    }
    if (!isLink) continue
    let target: string
    try {
      target = realpathSync(join(root, link))
    } catch {
      return {link, target: 'a missing file'}
    }
    const inside = relative(realRoot, target)
    if (inside.startsWith('..') || isAbsolute(inside)) return {link, target}
  }
  return undefined
}

/**
 * A UserError when `path` (relative to root) leaves the project through a symlink: the one rule for
 * every verb that reads, writes or deletes an artifact. `done` says what was not done.
 */
export function refuseSymlinkOutOfProject(root: string, path: string, done = 'muster neither reads nor writes artifacts through it, so nothing was written'): void {
  const escape = symlinkOutOfProject(root, path)
  if (escape) {
    throw new UserError(`${escape.link} is a symlink to ${escape.target}, outside the project; ${done}`, {
      hint: `Replace the symlink with a regular file (or remove it) and run the command again.`,
    })
  }
}

export function writeArtifacts(root: string, artifacts: readonly Artifact[], options: {check: boolean}): WriteReport {
  const planned: Array<WriteResult & {content: string}> = []
  const conflicts: string[] = []
  for (const artifact of artifacts) {
    refuseSymlinkOutOfProject(root, artifact.path)
    let current: string | undefined
    try {
      current = readIfExists(join(root, artifact.path))
    } catch (error) {
      throw artifactFsError(error, artifact.path, '; nothing was written')
    }
    const base = {path: artifact.path, content: artifact.content, ...(artifact.group === undefined ? {} : {group: artifact.group})}
    if (current === undefined) {
      planned.push({...base, status: options.check ? 'missing' : 'created'})
    } else if (current === artifact.content) {
      planned.push({...base, status: 'unchanged'})
    } else if (artifact.policy === 'ensure') {
      planned.push({...base, status: 'kept'})
    } else if (artifact.policy === 'create' && !options.check) {
      conflicts.push(artifact.path)
    } else {
      const diff = createTwoFilesPatch(`a/${artifact.path}`, `b/${artifact.path}`, current, artifact.content, '', '', {context: 3})
      planned.push({...base, status: options.check ? 'stale' : 'updated', diff})
    }
  }
  if (conflicts.length > 0) {
    throw new UserError(`${conflicts.join(', ')} already ${conflicts.length === 1 ? 'exists' : 'exist'} with other content; nothing was written`, {
      hint: `To rewrite ${conflicts.length === 1 ? 'it' : 'them'} from the nodes file and see what changes, run: muster role:update${conflicts.length === 1 ? ` ${groupOf(artifacts, conflicts[0])}` : ''}`,
    })
  }
  if (!options.check) {
    const toWrite = planned.filter((item) => item.status === 'created' || item.status === 'updated')
    // Temp files of an earlier run killed mid-write, in the folders this run writes to.
    for (const dir of new Set(planned.map((item) => dirname(join(root, item.path))))) removeStaleTempFiles(dir)
    for (const [i, item] of toWrite.entries()) {
      try {
        atomicWriteSync(join(root, item.path), item.content)
      } catch (error) {
        // Say exactly where the run stopped: what is already on disk and what is not.
        const written = toWrite.slice(0, i).map((w) => w.path)
        const notWritten = toWrite.slice(i).map((w) => w.path)
        const report = `; ${written.length > 0 ? `written before it: ${written.join(', ')}` : 'nothing was written'}; not written: ${notWritten.join(', ')}`
        throw artifactFsError(error, item.path, report)
      }
    }
  }
  const results = planned.map(({content: _content, ...result}) => result)
  return {results, checked: options.check, upToDate: results.every((r) => r.status !== 'missing' && r.status !== 'stale')}
}

function groupOf(artifacts: readonly Artifact[], path: string | undefined): string {
  return artifacts.find((a) => a.path === path)?.group ?? ''
}
