// `muster agent` as separate processes against a real etcd, for the agent's integration tests: a
// throwaway project (nodes file, dna, a provision command that records what it was given), agents
// started from the built CLI with their output in a file, their recorded runs, /health and
// /metrics, registry reads, and a 3-member etcd cluster on loopback ports.
import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {Etcd3} from 'etcd3'

import {binRun} from './cli.js'
import {findTool} from './integration.js'
import {freePort, freePorts, makeTempDir, type ManagedProcess, removeDir, startProcess, waitUntil} from './process.js'

/** One run of the provision command, as the recorder saw it (times in ms since the epoch, same clock as Date.now()). */
export interface RecordedRun {
  node: string
  start: number
  end: number
  reason: string
  revision: number
  runList: string
  /** Another run of the same node held the lock when this one started. */
  overlap: boolean
  attributes: {muster: {node: string; group: string; revision: number; services: Record<string, Array<{node: string; group: string; address: string; port?: number}>>; available: Record<string, boolean>}} & Record<string, unknown>
}

// A shell script, so that a run costs a few ms: it appends one JSON line per run to NODE.jsonl.
// mkdir is atomic: if the lock dir exists, another run of this node is still going. A file
// NODE.hang makes every run from then on hang (a dependent that never provisions again) for the
// seconds the file holds (an hour when empty). NODE.fail makes runs fail after printing two lines.
const RECORDER = `#!/bin/sh
dir="$RECORD_DIR"
node="$MUSTER_NODE"
start=$(date +%s%N)
overlap=false
if mkdir "$dir/$node.lock" 2>/dev/null; then :; else overlap=true; fi
attributes=$(tr -d '\\n' < "$MUSTER_ATTRIBUTES")
if [ -f "$dir/$node.hang" ] && [ "$MUSTER_REASON" != boot ]; then hang=$(cat "$dir/$node.hang"); sleep "\${hang:-3600}"; fi
if [ -n "$RECORD_SLEEP" ]; then sleep "$RECORD_SLEEP"; fi
end=$(date +%s%N)
if [ "$overlap" = false ]; then rmdir "$dir/$node.lock"; fi
printf '{"node":"%s","start":%s,"end":%s,"reason":"%s","revision":%s,"runList":"%s","overlap":%s,"attributes":%s}\\n' \\
  "$node" "$start" "$end" "$MUSTER_REASON" "$MUSTER_REVISION" "$MUSTER_RUN_LIST" "$overlap" "$attributes" >> "$dir/$node.jsonl"
if [ -f "$dir/$node.fail" ]; then echo "converging $node ($MUSTER_REASON)"; echo "FATAL: recipe failed on $node" >&2; exit 3; fi
exit 0
`

export type Groups = Record<string, Record<string, unknown>>

/** A base every test's nodes file starts from: enough for validate, nothing AWS is touched. */
export const MACHINE = {region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-1ebb2077'}

export interface AgentProject {
  dir: string
  project: string
  nodesFile: string
  recordDir: string
  recorder: string
  writeNodes(groups: Groups): void
  /** Every recorded run of a node, in the order they finished. */
  runs(node: string): RecordedRun[]
  cleanup(): void
}

export function createAgentProject(project: string, groups: Groups): AgentProject {
  const dir = makeTempDir('agent')
  const recordDir = join(dir, 'record')
  mkdirSync(recordDir)
  mkdirSync(join(dir, 'dna', 'asg'), {recursive: true})
  const recorder = join(dir, 'record.sh')
  writeFileSync(recorder, RECORDER)
  chmodSync(recorder, 0o755)
  const nodesFile = join(dir, 'nodes.json')
  const writeNodes = (next: Groups): void => {
    for (const name of Object.keys(next)) {
      if (name === '__base__') continue
      const dna = join(dir, 'dna', 'asg', `${name}.json`)
      if (!existsSync(dna)) writeFileSync(dna, JSON.stringify({id: name, run_list: [`role[role-${name}]`]}))
    }
    // Written whole and renamed into place: an agent that reloads never reads half a file.
    writeFileSync(`${nodesFile}.tmp`, JSON.stringify(next, null, 2))
    execFileSync('mv', [`${nodesFile}.tmp`, nodesFile])
  }
  writeNodes(groups)
  return {
    dir,
    project,
    nodesFile,
    recordDir,
    recorder,
    writeNodes,
    runs: (node) => readRuns(join(recordDir, `${node}.jsonl`)),
    cleanup: () => removeDir(dir),
  }
}

function readRuns(file: string): RecordedRun[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const run = JSON.parse(line) as RecordedRun
      return {...run, start: run.start / 1e6, end: run.end / 1e6}
    })
}

export interface AgentOptions {
  group: string
  node: string
  endpoints: readonly string[]
  address?: string
  ttl?: number
  wait?: string
  drain?: number
  /** Extra environment for the agent and so for its provision command (RECORD_SLEEP=0.3, say). */
  env?: Record<string, string>
  extraArgs?: string[]
  /** What node runs instead of `bin/run.js agent` (the agent's bundle, say). */
  entry?: string[]
  /** Working directory (default: the project's). */
  cwd?: string
}

export interface RunningAgent {
  node: string
  group: string
  proc: ManagedProcess
  stateDir: string
  statusPort: number
  health(): Promise<AgentHealthBody>
  metrics(): Promise<string>
  signal(signal: NodeJS.Signals): void
  /** SIGTERM and wait for the exit; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | string>
}

export interface AgentHealthBody {
  node: string
  group: string
  services: string[]
  registered: string[]
  dependsOn: string[]
  registry: {connected: boolean; revision: number; leaseId: string | null}
  provision: {state: string; ok: boolean | null; reason: string | null; revision: number}
  /** The digest of the release the node runs (instance:deploy), or null. */
  release: string | null
  deploy: {deploy: string | null; phase: string | null}
  queue: {provisionPending: boolean; running: boolean; retryAt: string | null; decommissioning: string[]}
}

export async function startAgent(project: AgentProject, options: AgentOptions): Promise<RunningAgent> {
  const statusPort = await freePort()
  const stateDir = join(project.dir, 'state', options.node)
  const args = [
    ...(options.entry ?? [binRun, 'agent']),
    '--group', options.group,
    '--nodes', project.nodesFile,
    '--node', options.node,
    '--address', options.address ?? `10.0.0.${1 + (hash(options.node) % 250)}`,
    '--etcd', options.endpoints.join(','),
    '--project', project.project,
    '--provision', project.recorder,
    '--state-dir', stateDir,
    '--status-addr', `127.0.0.1:${statusPort}`,
    '--ttl', String(options.ttl ?? 5),
    '--wait', options.wait ?? '100ms:1s',
    '--drain', String(options.drain ?? 1),
    ...(options.extraArgs ?? []),
  ]
  const proc = startProcess(process.execPath, args, {
    cwd: options.cwd ?? project.dir,
    env: {...process.env, NO_COLOR: '1', RECORD_DIR: project.recordDir, ...options.env},
  })
  const base = `http://127.0.0.1:${statusPort}`
  const agent: RunningAgent = {
    node: options.node,
    group: options.group,
    proc,
    stateDir,
    statusPort,
    health: async () => (await (await fetch(`${base}/health`, {signal: AbortSignal.timeout(2000)})).json()) as AgentHealthBody,
    metrics: async () => (await fetch(`${base}/metrics`, {signal: AbortSignal.timeout(2000)})).text(),
    signal: (signal) => {
      if (!proc.hasExited()) proc.child.kill(signal)
    },
    stop: async (timeoutMs = 10_000) => {
      if (!proc.hasExited()) proc.child.kill('SIGTERM')
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs)
      const code = await proc.exited
      clearTimeout(timer)
      return code
    },
  }
  return agent
}

/** Waits until the agent serves /health (it does once registered and its boot run is queued). */
export async function waitForAgent(agent: RunningAgent, timeoutMs = 15_000): Promise<void> {
  await waitUntil(`agent ${agent.node}`, async () => (await agent.health()).node === agent.node, {proc: agent.proc, timeoutMs})
}

/** Waits until the agent's boot run succeeded and its services are registered. */
export async function waitForBoot(agent: RunningAgent, timeoutMs = 15_000): Promise<void> {
  await waitUntil(
    `boot of ${agent.node}`,
    async () => {
      const h = await agent.health()
      return h.provision.ok === true && h.registered.length === h.services.length
    },
    {proc: agent.proc, timeoutMs},
  )
}

/** Stops every agent still running (SIGCONT first: a stopped process can't act on SIGTERM). */
export async function stopAll(agents: readonly RunningAgent[]): Promise<void> {
  await Promise.all(
    agents.map(async (a) => {
      if (a.proc.hasExited()) return
      a.signal('SIGCONT')
      await a.stop(5000)
    }),
  )
}

function hash(text: string): number {
  let h = 0
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return h
}

/** The value of a counter or gauge in Prometheus text, summed over the series matching `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line.trim())
    if (!match || match[1] !== name) continue
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(match[3])
  }
  return total
}

/** Keys under a prefix with their values and leases. */
export async function readPrefix(client: Etcd3, prefix: string): Promise<Map<string, {value: string; lease: string}>> {
  const response = await client.getAll().prefix(prefix).exec()
  return new Map(response.kvs.map((kv) => [kv.key.toString(), {value: kv.value.toString(), lease: String(kv.lease)}]))
}

/** A service record as an agent writes it, for putting providers into the registry directly. */
export function serviceValue(node: string, group: string, address: string, port?: number): string {
  return JSON.stringify({node, group, address, ...(port === undefined ? {} : {port}), since: new Date().toISOString()})
}

/** Asserts nothing about the runs, but explains them: for failure messages. */
export function describeRuns(runs: readonly RecordedRun[]): string {
  return runs
    .map((r) => `${r.node} ${r.reason}${r.runList ? ` ${r.runList}` : ''} rev=${r.revision} ${new Date(r.start).toISOString()}..${new Date(r.end).toISOString()} api=${(r.attributes.muster.services.api ?? []).map((s) => s.node).join(',')}`)
    .join('\n')
}

/** Nodes listed for `service` in a run's attributes. */
export function servicesIn(run: RecordedRun, service: string): string[] {
  return (run.attributes.muster.services[service] ?? []).map((s) => s.node).sort()
}

/** Fails when any node had two runs at once (the recorder's lock, and the runs' intervals). */
export function overlaps(runs: readonly RecordedRun[]): string[] {
  const problems: string[] = []
  for (const r of runs) if (r.overlap) problems.push(`${r.node}: a ${r.reason} run started at ${r.start} while another held the lock`)
  const sorted = [...runs].sort((a, b) => a.start - b.start)
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as RecordedRun
    const b = sorted[i] as RecordedRun
    if (b.start < a.end) problems.push(`${b.node}: runs overlap (${a.reason} ${a.start}..${a.end}, ${b.reason} ${b.start}..${b.end})`)
  }
  return problems
}

// ---- a 3-member etcd cluster ----------------------------------------------------------------

export interface EtcdMember {
  name: string
  endpoint: string
  proc: ManagedProcess | undefined
}

export interface EtcdCluster {
  members: EtcdMember[]
  endpoints: string[]
  /** The member that is leader now (asks etcdctl endpoint status). */
  leader(): Promise<EtcdMember>
  kill(member: EtcdMember): Promise<void>
  stop(): Promise<void>
}

export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const etcd = findTool('etcd')
  if (!etcd) throw new Error('etcd not found (install it with: bash scripts/ci/install-etcd.sh)')
  const etcdctl = findTool('etcdctl')
  if (!etcdctl) throw new Error('etcdctl not found (install it with: bash scripts/ci/install-etcd.sh)')
  const dir = makeTempDir('etcd-cluster')
  const ports = await freePorts(size * 2)
  const specs = Array.from({length: size}, (_, i) => ({
    name: `m${i}`,
    client: `http://127.0.0.1:${ports[2 * i]}`,
    peer: `http://127.0.0.1:${ports[2 * i + 1]}`,
  }))
  const initialCluster = specs.map((s) => `${s.name}=${s.peer}`).join(',')
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')))
  const members: EtcdMember[] = specs.map((s) => ({
    name: s.name,
    endpoint: s.client,
    proc: startProcess(etcd, [
      '--name', s.name,
      '--data-dir', join(dir, s.name),
      '--listen-client-urls', s.client,
      '--advertise-client-urls', s.client,
      '--listen-peer-urls', s.peer,
      '--initial-advertise-peer-urls', s.peer,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `muster-cluster-${ports[0]}`,
      // Quick elections, as on a LAN: the test waits for one after killing the leader.
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      '--logger', 'zap',
      '--log-level', 'warn',
    ], {cwd: dir, env}),
  }))
  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.proc?.stop()))
    removeDir(dir)
  }
  try {
    for (const m of members) {
      await waitUntil(`etcd member ${m.name}`, async () => {
        const response = await fetch(`${m.endpoint}/health`, {signal: AbortSignal.timeout(2000)})
        return response.ok && ((await response.json()) as {health?: unknown}).health === 'true'
      }, {proc: m.proc, timeoutMs: 30_000})
    }
  } catch (error) {
    await stop()
    throw error
  }
  const live = (): EtcdMember[] => members.filter((m) => m.proc !== undefined && !m.proc.hasExited())
  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    async leader() {
      const out = execFileSync(etcdctl, ['endpoint', 'status', '-w', 'json', '--endpoints', live().map((m) => m.endpoint).join(',')], {
        env: {...env, ETCDCTL_API: '3'},
        encoding: 'utf8',
        timeout: 10_000,
      })
      // Member ids are uint64: quote them before JSON.parse so that no two round to the same number.
      const statuses = JSON.parse(out.replace(/("(?:member_id|leader)"\s*:\s*)(\d+)/g, '$1"$2"')) as Array<{Endpoint: string; Status: {header: {member_id: number | string}; leader: number | string}}>
      const leader = statuses.find((s) => String(s.Status.header.member_id) === String(s.Status.leader))
      const found = members.find((m) => m.endpoint === leader?.Endpoint)
      if (!found) throw new Error(`no leader among ${out}`)
      return found
    },
    async kill(member) {
      if (!member.proc) return
      member.proc.child.kill('SIGKILL')
      await member.proc.exited
      member.proc = undefined
    },
    stop,
  }
}
