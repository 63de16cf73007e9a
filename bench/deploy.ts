// instance:deploy's rollout on the node side (issue 11's scale goal), against a real etcd from
// scripts/ci/install-etcd.sh.
//
//   Run (one command):  npx tsx bench/deploy.ts
//   Options:            [--agents 500] [--slots 25] [--provision-ms 100] [--runs 5] [--warmup 2] [--workers CORES] [--cookbooks 1] [--state-dir DIR]
//
// The simulated fleet: --agents agents (default 500) spread over --workers processes (default one
// per core, bench/deploy-agents.ts), each process with its own etcd client, registry feed and
// deploy feed as a node has, a Deployer per agent, a state dir each (on tmpfs when there is one:
// see fleetStateDir in bench/fleet.ts) and a provision that sleeps --provision-ms. Spread, because
// one event loop playing 500 agents is CPU-bound and would measure itself, not the protocol; one
// per core, because every process decodes every watch event, work a real fleet spreads over its
// machines (on the 2-core machine measured, 5 processes took ~1.3x the CPU of 2 per rollout).
// This process writes the deploy request (-n --slots) and follows the rollout the way the CLI
// does (a DeployFeed of its own), polling its progress every 5 ms.
//
// --warmup rollouts go first and are not counted: agents are long-lived processes, and the first
// rollout of a fresh worker runs cold code (twice the CPU of the later ones on the machine measured).
//
// Per run it prints: the wall time from writing the request to every node's result read back,
// against the ideal ceil(agents / slots) × provision-ms (20 × 100 ms = 2 s for the defaults); when
// the first provision started; first provision start → last end; the hand-off latency (how long a
// slot stood empty between one run's end and the next run's start: result write, watch event,
// claim transaction); the most provisions at once (from the recorded intervals; never above
// --slots); ok count; CPU time of the workers, of etcd and of this process; and etcd's requests by
// gRPC method (from its /metrics) per node. Then the medians over --runs. It asserts nothing.
//
// A control with the same 20 batches and 2 s ideal but a fifth of the agents (so a fifth of the
// simulation's CPU): npx tsx bench/deploy.ts --agents 100 --slots 5. On a 2-core machine the
// 500-agent run is bound by the CPU the simulation itself needs (every agent's gRPC calls, release
// unpacking, and each worker process decoding every watch event), which a real fleet spreads over
// its machines; compare the two to tell the protocol's overhead from the machine's.
//
// Releases are served from memory (each worker holds the objects), not S3: this measures the slot
// protocol, not a bucket. Each node still verifies and unpacks its release (--cookbooks 0 leaves
// the tarball out). bench/deploy-cli.ts runs the same fleet under the real `muster instance:deploy`.
import {createHash} from 'node:crypto'
import {cpus, loadavg} from 'node:os'

import {Etcd3} from 'etcd3'

import {silentLogger} from '../src/agent/log.js'
import {DeployFeed} from '../src/registry/deploy-feed.js'
import {openEtcd} from '../src/registry/etcd.js'
import {startEtcd} from '../test/support/etcd.js'
import {removeDir} from '../test/support/process.js'
import {buildRelease, maxConcurrent, writeDeployRequest} from '../test/support/release.js'
import {cpuMsOf, etcdRequests, fleetStateDir, handOffs, median, percentile, startFleet} from './fleet.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const AGENTS = arg('--agents', 500)
const SLOTS = arg('--slots', 25)
const PROVISION_MS = arg('--provision-ms', 100)
const RUNS = arg('--runs', 5)
const WARMUP = arg('--warmup', 2)
const WORKERS = arg('--workers', cpus().length)
/** --cookbooks 0: releases without a tarball, so the nodes' unpacking is left out. */
const COOKBOOKS = arg('--cookbooks', 1) !== 0
const BUCKET = 'bench-releases'
const PROJECT = 'bench-deploy'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function main(): Promise<void> {
  const etcd = await startEtcd()
  const dir = fleetStateDir(process.argv)
  const fleet = await startFleet({endpoint: etcd.endpoint, project: PROJECT, group: 'web', provisionMs: PROVISION_MS, dir, agents: AGENTS, workers: WORKERS})
  const store = openEtcd({endpoints: [etcd.endpoint]})
  const deploys = new DeployFeed(store, PROJECT, silentLogger)
  await deploys.start()
  const client = new Etcd3({hosts: etcd.endpoint})
  const ideal = Math.ceil(AGENTS / SLOTS) * PROVISION_MS
  // This machine's speed now (a shared VM's varies by the hour): compare runs made at different times by it.
  const calibration = Date.now()
  const block = Buffer.alloc(1 << 20, 7)
  for (let i = 0; i < 256; i++) createHash('sha256').update(block).digest()
  console.log(`calibration: sha256 of 256 MiB in ${Date.now() - calibration} ms`)
  const results: Array<{wall: number; span: number; handOff: number; workersCpu: number; etcdCpu: number}> = []
  console.log(`rollout of ${AGENTS} agents in ${WORKERS} processes, -n ${SLOTS}, provision ${PROVISION_MS} ms (ideal ${ideal} ms), ${COOKBOOKS ? "with" : "without"} a cookbooks tarball, state dirs in ${dir}, ${RUNS} runs; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  for (let run = -WARMUP; run < RUNS; run++) {
    const release = await buildRelease(BUCKET, {project: PROJECT, group: 'web', runList: [`recipe[app]`, `recipe[run${run + WARMUP}]`], ...(COOKBOOKS ? {} : {cookbooks: null})})
    const entries: Array<[string, string]> = [[release.manifestKey, release.bytes.toString('base64')]]
    if (release.tarball && release.tarballKey) entries.push([release.tarballKey, release.tarball.toString('base64')])
    fleet.send({type: 'objects', entries})
    await fleet.collect()
    await sleep(500)
    const requestsBefore = await etcdRequests(etcd.endpoint)
    const etcdBefore = cpuMsOf(etcd.pid()) ?? 0
    const cpu = process.cpuUsage()
    // BENCH_CPU_PROF=DIR: each worker's CPU profile of every counted rollout, written to DIR.
    if (process.env.BENCH_CPU_PROF && run >= 0) fleet.send({type: 'profile', dir: process.env.BENCH_CPU_PROF})
    const started = Date.now()
    const id = await writeDeployRequest(client, {project: PROJECT, releases: {web: release.ref}, targets: {web: fleet.nodes}, n: SLOTS, deadlineMs: 600_000})
    let progress = deploys.progress(id, new Date())
    const limit = Date.now() + 120_000
    while (!(progress?.done ?? false) && Date.now() < limit) {
      await sleep(5)
      progress = deploys.progress(id, new Date())
    }
    const wall = Date.now() - started
    const etcdCpu = (cpuMsOf(etcd.pid()) ?? 0) - etcdBefore
    const used = process.cpuUsage(cpu)
    // Let the lease revokes and node-record writes that follow a result land before counting.
    await sleep(300)
    const requestsAfter = await etcdRequests(etcd.endpoint)
    const {runs, cpuMs: workersCpu} = await fleet.collect()
    const deployRuns = runs.filter((r) => r.reason === 'deploy')
    const first = Math.min(...deployRuns.map((r) => r.start))
    const last = Math.max(...deployRuns.map((r) => r.end))
    const gaps = handOffs(deployRuns, SLOTS)
    const handOff = median(gaps)
    // The hand-off in two parts, from the nodes' own statuses (startedAt: when a node began its claim,
    // on the event that freed a slot; finishedAt: just before it wrote its result): result written →
    // next claim begun (result write, watch delivery, the waiting node's reaction), and claim begun →
    // provision running (the claim transaction, the switch to the release, the agent's run).
    const statuses = [...(deploys.state(id)?.statuses.values() ?? [])]
    const claimBegun = new Map(statuses.map((st) => [st.node, Date.parse(st.startedAt ?? '')]))
    const finishes = statuses.map((st) => Date.parse(st.finishedAt ?? '')).sort((a, b) => a - b)
    const begins = statuses.map((st) => Date.parse(st.startedAt ?? '')).sort((a, b) => a - b)
    const notice = begins.slice(SLOTS).map((b, k) => b - (finishes[k] as number))
    const claimToRun = deployRuns.map((r) => r.start - (claimBegun.get(r.node) ?? NaN)).filter(Number.isFinite)
    const requests = [...requestsAfter].map(([method, count]) => [method, count - (requestsBefore.get(method) ?? 0)] as const).filter(([, d]) => d > 0)
    const total = requests.reduce((sum, [, d]) => sum + d, 0)
    if (run < 0) {
      console.log(`  warm-up rollout: wall ${wall} ms, ok ${progress?.counts.ok ?? 0}/${AGENTS} (not counted)`)
      continue
    }
    results.push({wall, span: last - first, handOff, workersCpu, etcdCpu})
    console.log(`  run ${run + 1}: wall ${wall} ms (${(wall / ideal).toFixed(2)}x ideal); first provision after ${first - started} ms, first start → last end ${last - first} ms (${((last - first) / ideal).toFixed(2)}x), last end → done seen ${started + wall - last} ms; hand-off median ${handOff} ms, p90 ${percentile(gaps, 90)} ms, max ${Math.max(...gaps)} ms; ok ${progress?.counts.ok ?? 0}/${AGENTS}, most at once ${maxConcurrent(deployRuns)}`)
    console.log(`         hand-off parts: result written → next claim begun median ${median(notice)} ms (p90 ${percentile(notice, 90)}), claim begun → provision running median ${median(claimToRun)} ms (p90 ${percentile(claimToRun, 90)})`)
    console.log(`         CPU: workers ${workersCpu} ms, etcd ${etcdCpu} ms, follower ${Math.round((used.user + used.system) / 1000)} ms; etcd requests ${total} (${(total / AGENTS).toFixed(1)} per node: ${requests.map(([m, d]) => `${m} ${(d / AGENTS).toFixed(2)}`).join(', ')})`)
  }
  const m = (pick: (r: (typeof results)[number]) => number) => median(results.map(pick))
  console.log(`  median of ${results.length}: wall ${m((r) => r.wall)} ms = ${(m((r) => r.wall) / ideal).toFixed(2)}x the ideal ${ideal} ms; first start → last end ${m((r) => r.span)} ms = ${(m((r) => r.span) / ideal).toFixed(2)}x; hand-off ${m((r) => r.handOff)} ms; CPU per rollout: workers ${m((r) => r.workersCpu)} ms, etcd ${m((r) => r.etcdCpu)} ms`)
  await fleet.stop()
  await deploys.stop()
  client.close()
  store.close()
  await etcd.stop()
  removeDir(dir)
}

await main()
