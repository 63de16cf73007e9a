// The project's cookbooks/ as one reproducible gzipped tarball: the same tree gives the same bytes
// (so the same sha256, so the same content-addressed key, so nothing is uploaded twice), whoever
// packs it and wherever. Entries are sorted by path; owners, times and umask-dependent modes are
// normalised (files 0644, or 0755 when any execute bit is set; directories 0755; a fixed mtime);
// a hard link is packed as the file it is. Entries are named relative to cookbooks/ (NAME/recipes/
// default.rb): the agent unpacks them into RELEASE/cookbooks/ and takes plain files and directories
// only. So a symlink to a file inside cookbooks/ is packed as that file; a symlink that points
// outside cookbooks/ (or anywhere absolute) is refused, as it would carry the packing machine's
// files or dangle on the node, and so is a symlink to a directory (it could loop). Sockets, FIFOs
// and devices are refused too.
import {lstatSync, readdirSync, readlinkSync, statSync} from 'node:fs'
import {dirname, isAbsolute, join, posix, relative, resolve, sep} from 'node:path'

import {create, type WriteEntry} from 'tar'

import {UserError} from '../errors.js'
import {sha256Hex} from './build.js'

export const COOKBOOKS_DIR = 'cookbooks'
/** A fixed time for every entry: a checkout's mtimes say when it was cloned, not what it holds. */
const MTIME = new Date('2000-01-01T00:00:00Z')

export interface PackedCookbooks {
  bytes: Buffer
  sha256: string
  /** Paths packed (directories and files), relative to cookbooks/: what the tarball holds. */
  entries: string[]
}

/** Every path under cookbooks/, relative to it, sorted (byte order, depth first), checked. */
export function listCookbooks(projectRoot: string): string[] {
  const root = join(projectRoot, COOKBOOKS_DIR)
  const out: string[] = []
  const walk = (dir: string, rel: string): void => {
    const names = readdirSync(dir).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    for (const name of names) {
      const full = join(dir, name)
      const relPath = rel === '' ? name : posix.join(rel, name)
      const shown = posix.join(COOKBOOKS_DIR, relPath)
      const stat = lstatSync(full)
      if (stat.isSymbolicLink()) {
        const target = readlinkSync(full)
        const resolved = resolve(dirname(full), target)
        const inside = relative(root, resolved)
        if (isAbsolute(target) || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
          throw new UserError(`${shown} is a symlink to ${target}, outside ${COOKBOOKS_DIR}/`, {
            hint: `A release carries ${COOKBOOKS_DIR}/ only: copy what the link points to into ${COOKBOOKS_DIR}/, or make the link relative and inside it. Nothing was uploaded.`,
          })
        }
        let targetStat
        try {
          targetStat = statSync(full)
        } catch {
          throw new UserError(`${shown} is a symlink to ${target}, which does not exist`, {hint: `Remove the link or restore its target. Nothing was uploaded.`})
        }
        if (!targetStat.isFile()) {
          throw new UserError(`${shown} is a symlink to a directory (${target})`, {hint: `Nodes unpack plain files and directories only: replace the link with the directory itself. Nothing was uploaded.`})
        }
        out.push(relPath)
      } else if (stat.isDirectory()) {
        out.push(relPath)
        walk(full, relPath)
      } else if (stat.isFile()) {
        out.push(relPath)
      } else {
        throw new UserError(`${shown} is neither a file, a directory nor a symlink`, {hint: `Remove it from ${COOKBOOKS_DIR}/ (sockets, FIFOs and devices cannot be released). Nothing was uploaded.`})
      }
    }
  }
  walk(root, '')
  return out
}

/** Normalises what the machine's umask and owner put into an entry's mode. */
function normaliseMode(entry: WriteEntry): void {
  const stat = entry.stat
  if (!stat) return
  const type = stat.mode & ~0o7777
  const perms = stat.isDirectory() ? 0o755 : stat.mode & 0o111 ? 0o755 : 0o644
  stat.mode = type | perms
}

/** A link cache that never finds a link: hard links are packed as the files they are. */
class NoLinks extends Map<`${number}:${number}`, string> {
  override get(): string | undefined {
    return undefined
  }
}

/** The cookbooks tarball, or null when the project has no cookbooks/ directory (or an empty one). */
export async function packCookbooks(projectRoot: string): Promise<PackedCookbooks | null> {
  let isDir = false
  try {
    isDir = lstatSync(join(projectRoot, COOKBOOKS_DIR)).isDirectory()
  } catch {
    return null
  }
  if (!isDir) throw new UserError(`${join(projectRoot, COOKBOOKS_DIR)} is not a directory`, {hint: 'cookbooks/ must be a directory of Chef cookbooks (a symlink to one is not followed). Nothing was uploaded.'})
  const entries = listCookbooks(projectRoot)
  // An empty cookbooks/ converges the same as none: no tarball to upload or fetch.
  if (entries.length === 0) return null
  const stream = create(
    // follow: the symlinks listCookbooks let through point to files inside cookbooks/; pack those files.
    {gzip: {level: 9}, portable: true, mtime: MTIME, cwd: join(projectRoot, COOKBOOKS_DIR), noDirRecurse: true, follow: true, linkCache: new NoLinks(), onWriteEntry: normaliseMode, strict: true},
    entries,
  )
  const chunks: Buffer[] = []
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  return {bytes, sha256: sha256Hex(bytes), entries}
}
