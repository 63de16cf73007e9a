// haproxy as the agent touches it: check a config with `haproxy -c`, install it atomically,
// reload (through the master CLI, or a command of the user's), and change servers through the
// runtime API (the master CLI, forwarding to the current worker). The controller (haproxy.ts)
// holds the logic and gets these as an interface, so it is testable without haproxy.
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createConnection} from 'node:net'
import {basename, dirname, join} from 'node:path'

import {atomicWrite} from '../lib/atomic-write.js'

export interface HaproxyIo {
  /** The config now installed, if any (the last good one). */
  installed(): string | undefined
  check(text: string): Promise<{ok: boolean; output: string}>
  install(text: string): Promise<void>
  reload(): Promise<void>
  runtime(commands: readonly string[]): Promise<void>
}

export interface HaproxyIoOptions {
  configPath: string
  binary: string
  /** The master CLI socket (haproxy -W -S PATH). */
  masterSocket: string | undefined
  /** Run with /bin/sh -c to reload instead of the master CLI (e.g. `systemctl reload haproxy`). */
  reloadCommand: string | undefined
  timeoutMs?: number
}

/** One master CLI command line; resolves with the reply. The CLI answers and closes (non-interactive). */
export function masterCli(socket: string, line: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket)
    let reply = ''
    const timer = setTimeout(() => conn.destroy(new Error(`haproxy's master CLI at ${socket} did not answer within ${timeoutMs} ms`)), timeoutMs)
    conn.setEncoding('utf8')
    conn.on('connect', () => conn.end(`${line}\n`))
    conn.on('data', (chunk: string) => {
      reply += chunk
    })
    conn.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    conn.on('close', () => {
      clearTimeout(timer)
      resolve(reply)
    })
  })
}

/** Replies of the runtime API that mean a command was not applied. */
const REFUSED = /^(No such|Unknown command|Require|Invalid|'set server' expects|Can't|Failed|.*not found)/m

function run(command: string, args: readonly string[], timeoutMs: number): Promise<{code: number; output: string}> {
  return new Promise((resolve) => {
    execFile(command, [...args], {timeout: timeoutMs}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({code, output: `${stdout}${stderr}`.trim()})
    })
  })
}

export function haproxyIo(options: HaproxyIoOptions): HaproxyIo {
  const timeoutMs = options.timeoutMs ?? 20_000
  return {
    installed() {
      try {
        return readFileSync(options.configPath, 'utf8')
      } catch {
        return undefined
      }
    },
    async check(text) {
      // Beside the target, so relative paths in the config resolve as they will when installed.
      const temp = join(dirname(options.configPath), `.${basename(options.configPath)}.check-${randomBytes(4).toString('hex')}`)
      writeFileSync(temp, text, {mode: 0o600})
      try {
        const {code, output} = await run(options.binary, ['-c', '-f', temp], timeoutMs)
        return {ok: code === 0, output: output.split(temp).join(options.configPath)}
      } finally {
        rmSync(temp, {force: true})
      }
    },
    async install(text) {
      await atomicWrite(options.configPath, text, {mode: 0o644})
    },
    async reload() {
      if (options.reloadCommand !== undefined) {
        const {code, output} = await run('/bin/sh', ['-c', options.reloadCommand], timeoutMs)
        if (code !== 0) throw new Error(`the reload command exited ${code}: ${output.split('\n').slice(-3).join(' ')}`)
        return
      }
      if (options.masterSocket === undefined) throw new Error('no way to reload haproxy: give --haproxy-socket (its master CLI) or --haproxy-reload CMD')
      const reply = await masterCli(options.masterSocket, 'reload', timeoutMs)
      if (REFUSED.test(reply)) throw new Error(`haproxy refused the reload: ${reply.trim()}`)
    },
    async runtime(commands) {
      if (options.masterSocket === undefined) throw new Error('no runtime API: give --haproxy-socket (its master CLI)')
      // "@1" sends a command to the current worker; in a line of several, each needs it.
      const reply = await masterCli(options.masterSocket, commands.map((c) => `@1 ${c}`).join('; '), timeoutMs)
      if (REFUSED.test(reply)) throw new Error(`haproxy's runtime API refused: ${reply.trim().split('\n')[0]}`)
    },
  }
}
