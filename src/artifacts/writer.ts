// The one place artifacts reach the disk. Everything is planned first (read-only), so a refusal
// or a --check failure writes nothing at all; each write is atomic (temp file + rename).
import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {atomicWriteSync} from '../lib/atomic-write.js'

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

export function writeArtifacts(root: string, artifacts: readonly Artifact[], options: {check: boolean}): WriteReport {
  const planned: Array<WriteResult & {content: string}> = []
  const conflicts: string[] = []
  for (const artifact of artifacts) {
    const current = readIfExists(join(root, artifact.path))
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
    for (const item of planned) if (item.status === 'created' || item.status === 'updated') atomicWriteSync(join(root, item.path), item.content)
  }
  const results = planned.map(({content: _content, ...result}) => result)
  return {results, checked: options.check, upToDate: results.every((r) => r.status !== 'missing' && r.status !== 'stale')}
}

function groupOf(artifacts: readonly Artifact[], path: string | undefined): string {
  return artifacts.find((a) => a.path === path)?.group ?? ''
}
