// Atomic file replacement: a reader sees the old content or the new, never a torn file. The new
// content goes to a temp file beside the target (same file system, so rename is atomic), is
// fsynced, then renamed over it. An existing file keeps its mode, and a requested mode never
// widens it: a 0600 secret stays 0600 whatever the caller asks.
import {closeSync, fchmodSync, lstatSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync} from 'node:fs'
import {mkdir, open, rename, rm, stat} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import {basename, dirname, join} from 'node:path'

export interface AtomicWriteOptions {
  /** Permission bits of a new file; for an existing file, at most its current bits. */
  mode?: number
}

const DEFAULT_MODE = 0o666

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
}

/** A temp file of tempPath()'s naming (`.NAME.PID.HEX8.tmp`, or an older `.NAME.PID.MILLIS.tmp`), with its writer's pid. */
const TEMP_NAME = /^\..+\.(\d+)\.([0-9a-f]{8}|\d{10,})\.tmp$/

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, as another user's process.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A write takes milliseconds: a temp file untouched for this long is stale whatever its pid says
 * (a pid from another boot or PID namespace, e.g. 1 in a container, may be alive here).
 */
export const STALE_TEMP_AGE_MS = 10 * 60 * 1000

function olderThan(path: string, ageMs: number): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > ageMs
  } catch {
    return false
  }
}

/**
 * Removes the temp files a killed writer (kill -9, power loss) left in `dir`: only names of
 * tempPath()'s form whose process is gone, or that are older than STALE_TEMP_AGE_MS whatever
 * their pid. Returns the names removed.
 */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const removed: string[] = []
  for (const name of names) {
    const pid = Number(TEMP_NAME.exec(name)?.[1] ?? Number.NaN)
    if (!Number.isSafeInteger(pid)) continue
    if ((pid === process.pid || processAlive(pid)) && !olderThan(join(dir, name), STALE_TEMP_AGE_MS)) continue
    // Only what a writer leaves: a file or a link. A directory of that name is someone's, not ours.
    try {
      const stats = lstatSync(join(dir, name))
      if (!stats.isFile() && !stats.isSymbolicLink()) continue
      rmSync(join(dir, name), {force: true})
    } catch {
      continue
    }
    removed.push(name)
  }
  return removed
}

/** The mode to give the file: the existing file's, narrowed by a requested one; undefined: leave it to the umask. */
export function targetMode(existing: number | undefined, requested: number | undefined): number | undefined {
  if (existing === undefined) return requested
  const current = existing & 0o7777
  return requested === undefined ? current : current & requested
}

function existingModeSync(path: string): number | undefined {
  try {
    return statSync(path).mode
  } catch {
    return undefined
  }
}

async function existingMode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mode
  } catch {
    return undefined
  }
}

/** Makes the rename itself durable; some file systems cannot fsync a directory, which is no error. */
function syncDirSync(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // best effort
  }
}

export function atomicWriteSync(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  mkdirSync(dirname(path), {recursive: true})
  const mode = targetMode(existingModeSync(path), options.mode)
  const temp = tempPath(path)
  try {
    const fd = openSync(temp, 'wx', mode ?? DEFAULT_MODE)
    try {
      if (mode !== undefined) fchmodSync(fd, mode)
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, path)
  } catch (error) {
    rmSync(temp, {force: true})
    throw error
  }
  syncDirSync(dirname(path))
}

export async function atomicWrite(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(path), {recursive: true})
  const mode = targetMode(await existingMode(path), options.mode)
  const temp = tempPath(path)
  try {
    const file = await open(temp, 'wx', mode ?? DEFAULT_MODE)
    try {
      if (mode !== undefined) await file.chmod(mode)
      await file.writeFile(data)
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw error
  }
  syncDirSync(dirname(path))
}

