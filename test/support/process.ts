// Shared plumbing for the component helpers (moto, etcd, haproxy): free loopback ports, temp
// dirs, and child processes that are always stopped, even when a test throws or mocha exits early.
import {type ChildProcess, spawn, type SpawnOptions} from 'node:child_process'
import {closeSync, mkdtempSync, openSync, readFileSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** A port that was free on 127.0.0.1 a moment ago (the OS picks it, so parallel runs do not clash). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error('could not read the port of a listening socket'))
        return
      }
      server.close(() => resolve(address.port))
    })
  })
}

/** Several distinct free ports at once: holding them all until the end keeps them distinct. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `muster-${prefix}-`))
}

export function removeDir(dir: string): void {
  rmSync(dir, {force: true, recursive: true})
}

export interface ManagedProcess {
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far (for error messages). */
  output(): string
  /** Resolves with the exit code (or signal name) once the process has gone. */
  exited: Promise<number | string>
  hasExited(): boolean
  stop(timeoutMs?: number): Promise<void>
}

const running = new Set<ChildProcess>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // A crashed or interrupted test run must not leave servers bound to ports behind.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL')
  })
}

const OUTPUT_LIMIT = 64 * 1024

export function startProcess(command: string, args: string[], options: SpawnOptions = {}): ManagedProcess {
  installExitHook()
  // Output goes to a file, not a pipe: tests run the CLI with spawnSync, which stops this event
  // loop; a server writing a request log into a full pipe meanwhile would block (moto did, and
  // Packer waited on it forever).
  const logDir = mkdtempSync(join(tmpdir(), 'muster-proc-'))
  const logFile = join(logDir, 'output.log')
  const fd = openSync(logFile, 'a')
  const child = spawn(command, args, {...options, stdio: ['ignore', fd, fd]})
  closeSync(fd)
  running.add(child)
  let saved: string | undefined
  const readOutput = (): string => {
    if (saved !== undefined) return saved
    try {
      const text = readFileSync(logFile, 'utf8')
      return text.length > OUTPUT_LIMIT ? text.slice(-OUTPUT_LIMIT) : text
    } catch {
      return ''
    }
  }
  let output = ''
  const collect = (): void => {
    saved = readOutput()
    rmSync(logDir, {recursive: true, force: true})
  }
  let done = false
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error) => {
      done = true
      running.delete(child)
      output = `\n${String(error)}`
      collect()
      resolve(error.message)
    })
    child.once('exit', (code, signal) => {
      done = true
      running.delete(child)
      collect()
      resolve(code ?? signal ?? 'unknown')
    })
  })
  return {
    child,
    exited,
    hasExited: () => done,
    output: () => readOutput() + output,
    async stop(timeoutMs = 5000): Promise<void> {
      if (done) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      await exited
      clearTimeout(timer)
    },
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls `probe` until it returns true. Fails early with the process output if `proc` exits first,
 * which is what makes a misconfigured server show its own error instead of a bare timeout.
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  options: {proc?: ManagedProcess; timeoutMs?: number; intervalMs?: number} = {},
): Promise<void> {
  const {proc, timeoutMs = 30_000, intervalMs = 100} = options
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc?.hasExited()) {
      throw new Error(`${what} exited with ${String(await proc.exited)} before it answered:\n${proc.output()}`)
    }
    try {
      if (await probe()) return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not answer within ${timeoutMs} ms${proc ? `:\n${proc.output()}` : ''}`)
    }
    await sleep(intervalMs)
  }
}

/** True when an HTTP GET gets any response at all (any status). */
export async function httpAnswers(url: string): Promise<boolean> {
  const response = await fetch(url, {signal: AbortSignal.timeout(2000)})
  await response.arrayBuffer()
  return true
}
