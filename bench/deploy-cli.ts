// instance:deploy through the real CLI (issue 11's scale figures, the CLI's side).
//
//   Run (one command):  npm run build && npx tsx bench/deploy-cli.ts
//   Options:            [--agents 500] [--slots 25] [--provision-ms 100] [--runs 3] [--warmup 1] [--workers CORES]
//
// --warmup deploys go first and are not counted (the agents are long-lived; see bench/deploy.ts).
//
// The same simulated fleet as bench/deploy.ts (--agents agents over --workers processes, see
// bench/deploy-agents.ts), registered as live nodes of group `web`; the release bucket is moto's
// S3 (each worker process fetches each object once for its agents, as each machine would). Each
// run spawns `muster instance:deploy web -n 25 --yes --json` from dist/ and measures:
//   - the rollout: from the request's requestedAt to the last node's finishedAt, against the ideal
//     ceil(N / n) × 100 ms (20 × 100 ms for 500 and 25);
//   - the CLI's whole run (start-up, plan of N targets, pack, upload, follow, summary of N rows);
//   - the CLI's peak RSS (VmHWM from /proc/PID/status, read until it exits) and its CPU time.
// Prints each run and the medians; asserts nothing.
import {spawn} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {cpus} from 'node:os'
import {join} from 'node:path'

import {openEtcd} from '../src/registry/etcd.js'
import {binRun} from '../test/support/cli.js'
import {createBucket} from '../test/support/deploy.js'
import {startEtcd} from '../test/support/etcd.js'
import {startMoto} from '../test/support/moto.js'
import {removeDir} from '../test/support/process.js'
import {maxConcurrent} from '../test/support/release.js'
import {cpuMsOf, fleetStateDir, median, startFleet} from './fleet.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const AGENTS = arg('--agents', 500)
const SLOTS = arg('--slots', 25)
const PROVISION_MS = arg('--provision-ms', 100)
const RUNS = arg('--runs', 3)
const WORKERS = arg('--workers', cpus().length)
const WARMUP = arg('--warmup', 1)
const BUCKET = 'bench-cli-releases'
const PROJECT = 'bench-deploy-cli'


/** VmHWM (peak resident set) of a live process, in KiB; undefined once it has gone. */
function peakKiB(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

async function main(): Promise<void> {
  const [etcd, moto] = await Promise.all([startEtcd(), startMoto({sourceImages: []})])
  await createBucket(moto, BUCKET)
  Object.assign(process.env, moto.env)
  const dir = fleetStateDir(process.argv)
  const projectDir = join(dir, 'project')
  mkdirSync(join(projectDir, 'cookbooks', 'app', 'recipes'), {recursive: true})
  writeFileSync(join(projectDir, 'cookbooks', 'app', 'recipes', 'default.rb'), 'log "app"\n')
  writeFileSync(join(projectDir, 'nodes.json'), JSON.stringify({
    __base__: {region: 'us-east-1', instance_type: 't3.micro', source_ami: 'ami-1ebb2077', run_list: ['recipe[app]'], release_bucket: BUCKET},
    web: {autoscale: {timeout: 60, node_min: AGENTS, node_max: AGENTS}},
  }))

  const fleet = await startFleet({endpoint: etcd.endpoint, project: PROJECT, group: 'web', provisionMs: PROVISION_MS, dir, agents: AGENTS, workers: WORKERS})
  fleet.send({type: 'bucket', bucket: BUCKET})
  const store = openEtcd({endpoints: [etcd.endpoint]})

  const ideal = Math.ceil(AGENTS / SLOTS) * PROVISION_MS
  const rollouts: number[] = []
  const clis: number[] = []
  const peaks: number[] = []
  console.log(`muster instance:deploy web -n ${SLOTS} against ${AGENTS} agents in ${WORKERS} processes, provision ${PROVISION_MS} ms (ideal rollout ${ideal} ms), ${RUNS} runs:`)
  for (let run = -WARMUP; run < RUNS; run++) {
    // A different run list each time: a new release, so each run packs, uploads and diffs.
    const nodesFile = JSON.parse(readFileSync(join(projectDir, 'nodes.json'), 'utf8')) as {web: Record<string, unknown>}
    nodesFile.web.run_list = [`recipe[run${run + WARMUP}]`]
    writeFileSync(join(projectDir, 'nodes.json'), JSON.stringify(nodesFile))
    await fleet.collect()
    const started = Date.now()
    const child = spawn(process.execPath, [binRun, 'instance:deploy', 'web', '-n', String(SLOTS), '--yes', '--json'], {
      cwd: projectDir,
      env: {...process.env, NO_COLOR: '1', MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: PROJECT},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    let peak = 0
    let cliCpu = 0
    const sampler = setInterval(() => {
      peak = Math.max(peak, peakKiB(child.pid ?? -1) ?? 0)
      cliCpu = cpuMsOf(child.pid) ?? cliCpu
    }, 20)
    const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)))
    clearInterval(sampler)
    const cli = Date.now() - started
    if (code !== 0) {
      console.log(`  run ${run + 1}: exit ${code}\n${stderr.slice(-2000)}`)
      continue
    }
    const out = JSON.parse(stdout) as {result: {nodes: Array<{finishedAt: string | null; outcome: string}>}; plan: {id: string}}
    const request = (await store.snapshot(`/muster/${PROJECT}/deploys/${out.plan.id}`)).events[0]
    const requestedAt = Date.parse((JSON.parse(request?.value ?? '{}') as {requestedAt?: string}).requestedAt ?? '')
    const lastFinish = Math.max(...out.result.nodes.map((n) => Date.parse(n.finishedAt ?? '')))
    const rollout = lastFinish - requestedAt
    const ok = out.result.nodes.filter((n) => n.outcome === 'ok').length
    const deployRuns = (await fleet.collect()).runs.filter((r) => r.reason === 'deploy')
    if (run < 0) {
      console.log(`  warm-up deploy: rollout ${rollout} ms, ok ${ok}/${AGENTS} (not counted)`)
      continue
    }
    rollouts.push(rollout)
    clis.push(cli)
    peaks.push(peak)
    console.log(`  run ${run + 1}: rollout ${rollout} ms (${(rollout / ideal).toFixed(2)}x ideal), CLI run ${cli} ms (start-up, plan, pack, upload, follow, summary), ok ${ok}/${AGENTS}, most at once ${maxConcurrent(deployRuns)}, CLI peak RSS ${(peak / 1024).toFixed(0)} MiB, CLI CPU ≥ ${cliCpu} ms`)
  }
  console.log(`  median rollout ${median(rollouts)} ms = ${(median(rollouts) / ideal).toFixed(2)}x the ideal ${ideal} ms; median CLI run ${median(clis)} ms; median CLI peak RSS ${(median(peaks) / 1024).toFixed(0)} MiB`)
  await fleet.stop()
  store.close()
  await Promise.all([etcd.stop(), moto.stop()])
  removeDir(dir)
}

await main()
