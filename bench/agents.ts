// Registry and agent benchmarks (issue 10), against a real etcd from scripts/ci/install-etcd.sh:
//  1. N agents (default 2,000) in this one process, sharing one etcd client and one registry feed:
//     a provider registers → every dependent's provision queued, with --wait 0:0. p50/p99, lost.
//  2. 100 registrations within one second with the default wait (2s:10s): runs per dependent.
//  3. One idle `muster agent` process: resident memory, and CPU time over a minute.
// Run: npm run build && npx tsx bench/agents.ts [--agents N] [--rounds R] [--idle-seconds S].
// Prints medians and p99; asserts nothing.
import {spawn} from 'node:child_process'
import {readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'

import {Agent} from '../src/agent/agent.js'
import type {Identity} from '../src/agent/identity.js'
import {silentLogger} from '../src/agent/log.js'
import type {Provisioner} from '../src/agent/provisioner.js'
import {openEtcd} from '../src/registry/etcd.js'
import {RegistryFeed} from '../src/registry/feed.js'
import {serviceKey} from '../src/registry/keys.js'
import {binRun} from '../test/support/cli.js'
import {startEtcd} from '../test/support/etcd.js'
import {freePort, makeTempDir} from '../test/support/process.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const AGENTS = arg('--agents', 2000)
const ROUNDS = arg('--rounds', 20)
const IDLE_SECONDS = arg('--idle-seconds', 60)

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const instantProvisioner: Provisioner = {
  run: async () => ({ok: true, exitCode: 0, signal: null, tail: '', durationMs: 0}),
  cancel: () => undefined,
}

function identity(node: string, group: string, services: string[], dependsOn: string[]): Identity {
  return {node, group, address: '127.0.0.1', services: services.map((name) => ({name, cookbook: 'bench-service', recipe: `recipe[bench-service::${name}]`})), dependsOn, dna: {id: group}, dnaFile: '-', projectDir: '-'}
}

async function fleet(endpoint: string, project: string, count: number, wait: {minMs: number; maxMs: number}, onQueued: (node: string) => void, first?: (feed: RegistryFeed) => void) {
  const store = openEtcd({endpoints: [endpoint]})
  const feed = new RegistryFeed(store, project, silentLogger)
  await feed.start()
  first?.(feed)
  const agents: Agent[] = []
  const batch = 100
  for (let i = 0; i < count; i += batch) {
    const started = Array.from({length: Math.min(batch, count - i)}, (_, j) => {
      const node = `dep-${i + j}`
      const agent = new Agent({
        identity: identity(node, 'web', [], ['api']),
        project,
        ttlSeconds: 30,
        wait,
        drainMs: 0,
        stateDir: '/nonexistent',
        store,
        feed,
        provisioner: instantProvisioner,
        log: silentLogger,
        writeFile: async () => undefined,
        bootProvision: false,
        metrics: {provision: () => undefined, queued: (reason) => reason === 'dependency' && onQueued(node)},
      })
      agents.push(agent)
      return agent.start()
    })
    await Promise.all(started)
  }
  return {store, feed, agents}
}

async function latency(endpoint: string): Promise<void> {
  const project = 'bench-latency'
  const pending = new Map<string, number>()
  const latencies: number[] = []
  let registeredAt = 0
  // When the registration reached this process's watch, to split etcd's share from the agents'.
  const arrivals: number[] = []
  const {store, feed, agents} = await fleet(
    endpoint,
    project,
    AGENTS,
    {minMs: 0, maxMs: 0},
    (node) => {
      if (!pending.has(node)) return
      pending.delete(node)
      latencies.push(performance.now() - registeredAt)
    },
    (f) =>
      f.subscribe((change) => {
        if (change.services.has('api') && pending.size > 0) arrivals.push(performance.now() - registeredAt)
      }),
  )
  const rssAfterStart = process.memoryUsage().rss
  let lost = 0
  const lease = await store.grantLease(30)
  for (let round = 0; round < ROUNDS; round++) {
    for (const a of agents) pending.set(a.identity.node, 0)
    registeredAt = performance.now()
    const key = serviceKey(project, 'api', `provider-${round}`)
    await lease.put(key, JSON.stringify({node: `provider-${round}`, group: 'api', address: '10.0.0.1', port: 80, since: new Date().toISOString()}))
    const deadline = Date.now() + 10_000
    while (pending.size > 0 && Date.now() < deadline) await sleep(5)
    lost += pending.size
    pending.clear()
    // Let every dependent finish its run and its node-record updates (two puts per provision, each
    // fanned out to every agent of this process) settle before the next round, or the next
    // registration queues behind the last round's storm.
    for (let last = -1; last !== feed.stats.events || agents.some((a) => a.health().queue.running || a.health().queue.provisionPending); ) {
      last = feed.stats.events
      await sleep(500)
    }
  }
  console.log(`registration → every dependent's provision queued (${AGENTS} agents, one process, --wait 0:0, ${ROUNDS} registrations):`)
  console.log(`  p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms, lost ${lost} of ${AGENTS * ROUNDS}`)
  console.log(`  of which the watch event's arrival: p50 ${quantile(arrivals, 0.5).toFixed(1)} ms, p99 ${quantile(arrivals, 0.99).toFixed(1)} ms`)
  console.log(`  process RSS with ${AGENTS} agents: ${(rssAfterStart / 2 ** 20).toFixed(0)} MiB`)
  await Promise.all(agents.map((a) => a.stop()))
  await lease.revoke()
  await feed.stop()
  store.close()
}

async function burst(endpoint: string): Promise<void> {
  const project = 'bench-burst'
  const runs = new Map<string, number>()
  const dependents = 50
  const {store, feed, agents} = await fleet(endpoint, project, dependents, {minMs: 2000, maxMs: 10_000}, () => undefined)
  // Count runs, not requests: wrap each agent's provision.
  for (const a of agents) {
    const original = a.provision.bind(a)
    a.provision = (reason, runList) => {
      runs.set(a.identity.node, (runs.get(a.identity.node) ?? 0) + 1)
      return original(reason, runList)
    }
  }
  const lease = await store.grantLease(30)
  const start = Date.now()
  for (let i = 0; i < 100; i++) {
    await lease.put(serviceKey(project, 'api', `p-${i}`), JSON.stringify({node: `p-${i}`, group: 'api', address: `10.0.1.${i}`, port: 80, since: new Date().toISOString()}))
    await sleep(Math.max(0, start + (i + 1) * 10 - Date.now()))
  }
  const spread = Date.now() - start
  await sleep(13_000)
  const counts = agents.map((a) => runs.get(a.identity.node) ?? 0)
  console.log(`100 registrations within ${spread} ms, default wait 2s:10s, ${dependents} dependents: runs per dependent median ${quantile(counts, 0.5)}, max ${Math.max(...counts)}`)
  await Promise.all(agents.map((a) => a.stop()))
  await lease.revoke()
  await feed.stop()
  store.close()
}

async function idle(endpoint: string): Promise<void> {
  const dir = makeTempDir('bench-idle')
  mkdirSync(join(dir, 'dna', 'asg'), {recursive: true})
  writeFileSync(join(dir, 'nodes.json'), JSON.stringify({__base__: {region: 'us-east-1', instance_type: 'm5.large', source_ami: 'ami-12345678', run_list: ['recipe[base]']}, web: {run_list: ['recipe[web-service::www]'], depends_on: ['www']}}))
  writeFileSync(join(dir, 'dna', 'asg', 'web.json'), '{"id": "web", "run_list": ["role[role-web]"]}\n')
  const port = await freePort()
  const child = spawn(process.execPath, [binRun, 'agent', '--group', 'web', '--node', 'idle-1', '--address', '127.0.0.1', '--etcd', endpoint, '--project', 'bench-idle', '--provision', 'true', '--status-addr', `127.0.0.1:${port}`], {cwd: dir, stdio: ['ignore', 'ignore', 'inherit']})
  const ticks = (): number => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return Number(fields[11]) + Number(fields[12])
  }
  const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024
  await sleep(5000)
  const before = ticks()
  const samples: number[] = []
  for (let s = 0; s < IDLE_SECONDS; s += 5) {
    await sleep(5000)
    samples.push(rss())
  }
  const cpuSeconds = (ticks() - before) / 100
  console.log(`one idle agent over ${IDLE_SECONDS} s: RSS median ${quantile(samples, 0.5).toFixed(1)} MiB (max ${Math.max(...samples).toFixed(1)}), CPU ${cpuSeconds.toFixed(2)} s (${((cpuSeconds / IDLE_SECONDS) * 100).toFixed(2)}% of one core)`)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

const etcd = await startEtcd()
try {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`)
  await latency(etcd.endpoint)
  await burst(etcd.endpoint)
  await idle(etcd.endpoint)
} finally {
  await etcd.stop()
}
