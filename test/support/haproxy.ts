// A real haproxy (Debian's) for rendered configs: validation with `haproxy -c`, and a live proxy on
// a free high loopback port in master-worker mode, so reload() is the same SIGUSR2 re-exec that a
// production reload does (old worker finishes, new worker reads the rewritten config).
import {execFile} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {createConnection} from 'node:net'
import {join} from 'node:path'

import {findTool} from './integration.js'
import {freePort, makeTempDir, type ManagedProcess, removeDir, startProcess, waitUntil} from './process.js'

export interface HaproxyCheck {
  ok: boolean
  exitCode: number
  /** haproxy's own stdout+stderr ("Configuration file is valid", or the [ALERT] lines). */
  output: string
}

/** What a config renderer gets: the port to bind and a dir for sockets or maps. */
export interface HaproxyContext {
  port: number
  dir: string
}

export type HaproxyConfig = string | ((ctx: HaproxyContext) => string)

export interface HaproxyServer {
  /** The frontend port handed to the renderer (127.0.0.1). */
  port: number
  /** http://127.0.0.1:PORT */
  url: string
  configPath: string
  /** Validates the new config, and only if it is valid rewrites it and reloads the running haproxy. */
  reload(config: HaproxyConfig): Promise<void>
  /** PIDs of the current workers (a reload replaces them). */
  workerPids(): Promise<number[]>
  stop(): Promise<void>
}

function haproxyBinary(): string {
  const found = findTool('haproxy')
  if (!found) throw new Error('haproxy not found (install it with: bash scripts/ci/install-haproxy.sh)')
  return found
}

function runHaproxyCheck(configPath: string): Promise<HaproxyCheck> {
  return new Promise((resolve) => {
    execFile(haproxyBinary(), ['-c', '-f', configPath], {timeout: 20_000}, (error, stdout, stderr) => {
      const exitCode = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ok: exitCode === 0, exitCode, output: `${stdout}${stderr}`})
    })
  })
}

/** Runs `haproxy -c -f` on a config text (written to a temp file that is removed afterwards). */
export async function checkHaproxyConfig(config: string): Promise<HaproxyCheck> {
  const dir = makeTempDir('haproxy-check')
  try {
    const path = join(dir, 'haproxy.cfg')
    writeFileSync(path, config)
    return await runHaproxyCheck(path)
  } finally {
    removeDir(dir)
  }
}

/**
 * Starts haproxy in master-worker mode. A function config is rendered with a free port; a string
 * config must bind its own ports, and `port` is then a free port that nothing uses.
 */
export async function startHaproxy(config: HaproxyConfig): Promise<HaproxyServer> {
  const binary = haproxyBinary()
  const dir = makeTempDir('haproxy')
  const port = await freePort()
  const ctx: HaproxyContext = {port, dir}
  const configPath = join(dir, 'haproxy.cfg')
  const masterSocket = join(dir, 'master.sock')
  const render = (c: HaproxyConfig): string => (typeof c === 'string' ? c : c(ctx))

  let proc: ManagedProcess | undefined
  try {
    writeFileSync(configPath, render(config))
    const check = await runHaproxyCheck(configPath)
    if (!check.ok) throw new Error(`haproxy config is invalid:\n${check.output}`)
    // -W master-worker, -db in the foreground even if the config says `daemon` (a production config
    // may), -S master CLI (to see workers come and go on reload).
    proc = startProcess(binary, ['-W', '-db', '-S', masterSocket, '-f', configPath], {cwd: dir})
    const started = proc
    await waitUntil('haproxy', async () => (await masterCommand(masterSocket, 'show proc')).workers.length > 0, {proc: started})
    if (typeof config !== 'string') {
      await waitUntil(`haproxy on port ${port}`, () => canConnect(port), {proc: started})
    }
  } catch (error) {
    await proc?.stop()
    removeDir(dir)
    throw error
  }
  const running = proc

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    configPath,
    async workerPids(): Promise<number[]> {
      return (await masterCommand(masterSocket, 'show proc')).workers
    },
    async reload(next: HaproxyConfig): Promise<void> {
      const candidate = join(dir, 'candidate.cfg')
      writeFileSync(candidate, render(next))
      const check = await runHaproxyCheck(candidate)
      if (!check.ok) throw new Error(`haproxy config is invalid, not reloading:\n${check.output}`)
      const before = new Set((await masterCommand(masterSocket, 'show proc')).workers)
      writeFileSync(configPath, render(next))
      running.child.kill('SIGUSR2')
      await waitUntil(
        'haproxy reload',
        async () => (await masterCommand(masterSocket, 'show proc')).workers.some((pid) => !before.has(pid)),
        {proc: running},
      )
    },
    async stop(): Promise<void> {
      await running.stop()
      removeDir(dir)
    },
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({host: '127.0.0.1', port})
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Sends one command to the master CLI socket and parses the current workers out of `show proc`. */
export function masterCommand(socketPath: string, command: string): Promise<{text: string; workers: number[]}> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath)
    let text = ''
    socket.setTimeout(2000, () => socket.destroy(new Error('haproxy master CLI timed out')))
    // The master CLI only closes its side after ours is half-closed.
    socket.once('connect', () => socket.end(`${command}\n`))
    socket.on('data', (chunk) => (text += chunk.toString('utf8')))
    socket.once('error', reject)
    socket.once('close', () => resolve({text, workers: currentWorkers(text)}))
  })
}

// `show proc` lists "# workers" then "# old workers" (still draining after a reload); only the
// first section is what serves new connections.
function currentWorkers(showProc: string): number[] {
  const pids: number[] = []
  let section = ''
  for (const line of showProc.split('\n')) {
    if (line.startsWith('#')) {
      section = line.replace(/^#\s*/, '').trim()
      continue
    }
    const match = /^(\d+)\s+worker\b/.exec(line)
    if (match?.[1] && section === 'workers') pids.push(Number(match[1]))
  }
  return pids
}
