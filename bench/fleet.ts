// The simulated fleet of bench/deploy.ts and bench/deploy-cli.ts: AGENTS agents spread over
// WORKERS processes (bench/deploy-agents.ts), so that no single event loop plays the whole fleet.
import {type ChildProcess, fork} from 'node:child_process'
import {accessSync, constants, mkdtempSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {FromWorker, Run, ToWorker, WorkerSpec} from './deploy-agents.js'

export type {Run} from './deploy-agents.js'

export interface Fleet {
  nodes: string[]
  pids: number[]
  send(message: ToWorker): void
  /** Every worker's provision runs since the last collect, and their CPU time (ms, summed). */
  collect(): Promise<{runs: Run[]; cpuMs: number}>
  stop(): Promise<void>
}

export interface FleetSpec extends Omit<WorkerSpec, 'nodes'> {
  agents: number
  workers: number
}

export async function startFleet(spec: FleetSpec): Promise<Fleet> {
  const nodes = Array.from({length: spec.agents}, (_, i) => `${spec.group}-${String(i).padStart(4, '0')}`)
  const per = Math.ceil(nodes.length / spec.workers)
  const script = fileURLToPath(new URL('deploy-agents.ts', import.meta.url))
  const children: ChildProcess[] = []
  const pending = new Map<ChildProcess, Array<(m: FromWorker) => void>>()
  const next = (child: ChildProcess): Promise<FromWorker> => new Promise((resolve) => pending.get(child)?.push(resolve))
  for (let w = 0; w < spec.workers; w++) {
    const slice = nodes.slice(w * per, (w + 1) * per)
    if (slice.length === 0) break
    const workerSpec: WorkerSpec = {endpoint: spec.endpoint, project: spec.project, group: spec.group, provisionMs: spec.provisionMs, dir: spec.dir, nodes: slice}
    const child = fork(script, [JSON.stringify(workerSpec)], {execArgv: ['--import', import.meta.resolve('tsx')], stdio: ['ignore', 'inherit', 'inherit', 'ipc']})
    pending.set(child, [])
    child.on('message', (m: FromWorker) => pending.get(child)?.shift()?.(m))
    children.push(child)
  }
  const ready = await Promise.race([
    Promise.all(children.map((c) => next(c))),
    new Promise<undefined>((resolve) => setTimeout(resolve, 120_000, undefined).unref()),
  ])
  if (!ready) throw new Error('the bench workers did not start within 2 minutes')
  return {
    nodes,
    pids: children.map((c) => c.pid ?? -1),
    send: (message) => {
      for (const c of children) c.send(message)
    },
    async collect() {
      const replies = await Promise.all(children.map((c) => {
        const reply = next(c)
        c.send({type: 'collect'} satisfies ToWorker)
        return reply
      }))
      const runs: Run[] = []
      let cpuMs = 0
      for (const r of replies) {
        if (r.type !== 'runs') continue
        runs.push(...r.runs)
        cpuMs += r.cpuMs
      }
      return {runs, cpuMs}
    },
    async stop() {
      await Promise.all(children.map((c) => new Promise<void>((resolve) => {
        if (c.exitCode !== null) return resolve()
        c.once('exit', () => resolve())
        c.send({type: 'stop'} satisfies ToWorker)
        setTimeout(() => {
          if (c.exitCode === null) c.kill('SIGKILL')
        }, 10_000).unref()
      })))
    },
  }
}

/**
 * A fresh directory for the simulated nodes' state dirs: under --state-dir DIR when given, else on
 * tmpfs (/dev/shm) when the machine has one, else the temp dir. Why tmpfs: each node unpacks its
 * release (some ten files and directories created); on the 2-core VM this bench was written on,
 * ext4 spent ~5.5 ms of kernel time per node doing that (strace -c: mkdir 0.65 ms, symlink 1.2 ms
 * per call), a third of a 500-node rollout's CPU, which a real fleet spends on 500 disks, each
 * before its node's turn. --state-dir "$TMPDIR" measures it the other way.
 */
export function fleetStateDir(argv: readonly string[]): string {
  const i = argv.indexOf('--state-dir')
  const base = i > 0 ? (argv[i + 1] as string) : usable('/dev/shm') ? '/dev/shm' : tmpdir()
  return mkdtempSync(join(base, 'muster-bench-fleet-'))
}

function usable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK)
    return statSync(dir).isDirectory()
  } catch {
    return false
  }
}

/** CPU time (user + system, ms) a process has used so far, from /proc; undefined once gone. */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the pid and comm.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return undefined
  }
}

/** etcd's request counters (/metrics on the client URL), per gRPC method. */
export async function etcdRequests(endpoint: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${endpoint}/metrics`)).text()
  const counts = new Map<string, number>()
  for (const match of text.matchAll(/^grpc_server_msg_received_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\d+)/gm)) {
    counts.set(match[1] as string, (counts.get(match[1] as string) ?? 0) + Number(match[2]))
  }
  return counts
}

export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN
}

/**
 * How long a slot stood empty between runs: with n slots, the k-th run to start (k ≥ n) could
 * start once the (k-n)-th run to end had ended. The gaps are that hand-off's latency: the result's
 * write, etcd's watch event, the waiting node's claim transaction and its way to the provision.
 */
export function handOffs(runs: ReadonlyArray<{start: number; end: number}>, n: number): number[] {
  const starts = runs.map((r) => r.start).sort((a, b) => a - b)
  const ends = runs.map((r) => r.end).sort((a, b) => a - b)
  const gaps: number[] = []
  for (let k = n; k < starts.length; k++) gaps.push((starts[k] as number) - (ends[k - n] as number))
  return gaps
}
