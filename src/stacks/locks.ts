// Who holds a stack's lock, and whether that holder still lives. The DIY (file) backend — muster's
// embedded one included — writes one JSON file per lock, naming the pid, user and host of the
// update that holds it: a lock whose process is gone from this host is stale, left by an update
// that was killed (kill -9, a lost session). Other backends do not say; muster then does not guess.
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export interface LockHolder {
  /** The lock file, for messages. */
  file: string
  pid: number | undefined
  username: string | undefined
  hostname: string | undefined
  timestamp: string | undefined
  /** 'stale': its process is gone from this host; 'live': it runs; 'unknown': another host, or no pid. */
  state: 'stale' | 'live' | 'unknown'
}

/** Where a file backend keeps a stack's locks; undefined for backends that are not file:// URLs. */
export function lockDir(backendUrl: string | undefined, project: string, stack: string): string | undefined {
  if (!backendUrl?.startsWith('file://')) return undefined
  return join(fileURLToPath(backendUrl.replace(/\?.*$/, '')), '.pulumi', 'locks', 'organization', project, stack)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined)

/** The holders of a stack's lock (empty when unlocked); undefined when the backend cannot say. */
export function lockHolders(dir: string | undefined): LockHolder[] | undefined {
  if (dir === undefined) return undefined
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name): LockHolder => {
      const file = join(dir, name)
      let parsed: Record<string, unknown> = {}
      try {
        const value: unknown = JSON.parse(readFileSync(file, 'utf8'))
        if (value && typeof value === 'object') parsed = value as Record<string, unknown>
      } catch {
        // A lock file we cannot read still locks the stack; its holder is unknown.
      }
      const pid = typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) && parsed.pid > 0 ? parsed.pid : undefined
      const host = text(parsed.hostname)
      const state = pid === undefined || host !== hostname() ? 'unknown' : alive(pid) ? 'live' : 'stale'
      return {file, pid, username: text(parsed.username), hostname: host, timestamp: text(parsed.timestamp), state}
    })
}

/** "pid 4242 of ops on bastion since …, no longer running (stale)" */
export function describeHolder(holder: LockHolder): string {
  const who = [holder.pid === undefined ? 'an update' : `pid ${holder.pid}`, holder.username ? `of ${holder.username}` : '', holder.hostname ? `on ${holder.hostname}` : '', holder.timestamp ? `since ${holder.timestamp}` : '']
  const state = holder.state === 'stale' ? 'no longer running: the lock is stale' : holder.state === 'live' ? 'still running' : 'on another host: muster cannot tell whether it still runs'
  return `${who.filter(Boolean).join(' ')}, ${state}`
}
