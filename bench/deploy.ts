// instance:deploy's rollout on the node side (issue 11), against a real etcd from
// scripts/ci/install-etcd.sh: N agents (default 500) in this one process, sharing one etcd client,
// one registry feed and one deploy feed, each with its own Deployer, state dir and a provision that
// takes 100 ms. A deploy request with -n 25 goes out; the wall time from writing the request to
// every node reporting ok is compared with the ideal, ceil(N / n) × 100 ms (20 × 100 ms for 500
// and 25). Releases are served from memory, not S3: this measures the slot protocol (claims,
// statuses, the stop check), not a bucket's throughput; each node still verifies and unpacks
// (all of them in this one process, which a fleet spreads over its machines: --cookbooks 0 leaves
// the tarball out).
// Run: npx tsx bench/deploy.ts [--agents N] [--slots n] [--provision-ms MS] [--runs R] [--cookbooks 0].
// Prints the median of R rollouts and each run; asserts nothing.
import {join} from 'node:path'

import {Etcd3} from 'etcd3'

import {Agent} from '../src/agent/agent.js'
import {Deployer} from '../src/agent/deployer.js'
import type {Identity} from '../src/agent/identity.js'
import {silentLogger} from '../src/agent/log.js'
import type {Provisioner} from '../src/agent/provisioner.js'
import {DeployFeed} from '../src/registry/deploy-feed.js'
import {openEtcd} from '../src/registry/etcd.js'
import {RegistryFeed} from '../src/registry/feed.js'
import type {ReleaseBucket} from '../src/release/bucket.js'
import {startEtcd} from '../test/support/etcd.js'
import {makeTempDir, removeDir} from '../test/support/process.js'
import {buildRelease, maxConcurrent, writeDeployRequest} from '../test/support/release.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const AGENTS = arg('--agents', 500)
const SLOTS = arg('--slots', 25)
const PROVISION_MS = arg('--provision-ms', 100)
const RUNS = arg('--runs', 3)
/** --cookbooks 0: releases without a tarball, so the nodes' unpacking (all in this one process) is left out. */
const COOKBOOKS = arg('--cookbooks', 1) !== 0
const BUCKET = 'bench-releases'
const PROJECT = 'bench-deploy'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN

function identity(node: string): Identity {
  return {node, group: 'web', address: '127.0.0.1', services: [], dependsOn: [], dna: {id: 'web'}, dnaFile: '-', projectDir: '-'}
}

async function main(): Promise<void> {
  const etcd = await startEtcd()
  const dir = makeTempDir('bench-deploy')
  const objects = new Map<string, Buffer>()
  const openBucket = (bucket: string): ReleaseBucket => ({
    bucket,
    get: async (key) => {
      const body = objects.get(key)
      if (!body) throw new Error(`no ${key}`)
      return body
    },
    exists: async (key) => objects.has(key),
    put: async (key, body) => {
      objects.set(key, body)
    },
  })
  const runs: Array<{node: string; start: number; end: number; reason: string}> = []
  const provisioner = (node: string): Provisioner => ({
    run: async (request) => {
      const start = Date.now()
      await sleep(PROVISION_MS)
      runs.push({node, start, end: Date.now(), reason: request.reason})
      return {ok: true, exitCode: 0, signal: null, tail: '', durationMs: Date.now() - start}
    },
    cancel: () => undefined,
  })

  const store = openEtcd({endpoints: [etcd.endpoint]})
  const feed = new RegistryFeed(store, PROJECT, silentLogger)
  const deploys = new DeployFeed(store, PROJECT, silentLogger)
  deploys.follow(feed)
  await feed.start()
  const agents: Agent[] = []
  const deployers: Deployer[] = []
  const nodes = Array.from({length: AGENTS}, (_, i) => `web-${String(i).padStart(4, '0')}`)
  for (let i = 0; i < nodes.length; i += 100) {
    await Promise.all(nodes.slice(i, i + 100).map(async (node) => {
      const stateDir = join(dir, node)
      const agent = new Agent({identity: identity(node), project: PROJECT, ttlSeconds: 30, wait: {minMs: 0, maxMs: 0}, drainMs: 0, stateDir, store, feed, provisioner: provisioner(node), log: silentLogger, writeFile: async () => undefined, bootProvision: false})
      await agent.start()
      const deployer = new Deployer({project: PROJECT, node, group: 'web', stateDir, ttlSeconds: 30, store, feed: deploys, target: agent, log: silentLogger, fetch: {openBucket}})
      deployer.start()
      agents.push(agent)
      deployers.push(deployer)
    }))
  }
  const client = new Etcd3({hosts: etcd.endpoint})
  const ideal = Math.ceil(AGENTS / SLOTS) * PROVISION_MS
  const walls: number[] = []
  console.log(`rollout of ${AGENTS} in-process agents, -n ${SLOTS}, provision ${PROVISION_MS} ms (ideal ${ideal} ms), ${COOKBOOKS ? 'with' : 'without'} a cookbooks tarball, ${RUNS} runs:`)
  for (let run = 0; run < RUNS; run++) {
    const release = await buildRelease(BUCKET, {project: PROJECT, group: 'web', runList: [`recipe[app]`, `recipe[run${run}]`], ...(COOKBOOKS ? {} : {cookbooks: null})})
    objects.set(release.manifestKey, release.bytes)
    if (release.tarball && release.tarballKey) objects.set(release.tarballKey, release.tarball)
    runs.length = 0
    const rss: number[] = []
    const started = Date.now()
    const cpu = process.cpuUsage()
    const id = await writeDeployRequest(client, {project: PROJECT, releases: {web: release.ref}, targets: {web: nodes}, n: SLOTS, deadlineMs: 600_000})
    let progress = deploys.progress(id, new Date())
    let allReported: number | undefined
    const limit = Date.now() + 120_000
    while (!(progress?.done ?? false) && Date.now() < limit) {
      await sleep(5)
      progress = deploys.progress(id, new Date())
      if (allReported === undefined && progress && progress.nodes.every((n) => n.status !== undefined)) allReported = Date.now() - started
      if (rss.length < (Date.now() - started) / 250) rss.push(process.memoryUsage().rss)
    }
    const wall = Date.now() - started
    const used = process.cpuUsage(cpu)
    const cpuMs = Math.round((used.user + used.system) / 1000)
    walls.push(wall)
    const deployRuns = runs.filter((r) => r.reason === 'deploy')
    const first = Math.min(...deployRuns.map((r) => r.start))
    const last = Math.max(...deployRuns.map((r) => r.end))
    console.log(`  run ${run + 1}: every node reported after ${allReported ?? '?'} ms, first provision after ${first - started} ms; wall ${wall} ms (${(wall / ideal).toFixed(2)}x ideal), first provision start → last end ${last - first} ms (${((last - first) / ideal).toFixed(2)}x), ok ${progress?.counts.ok ?? 0}/${AGENTS}, most at once ${maxConcurrent(deployRuns)}, this process's CPU ${cpuMs} ms, peak RSS ${(Math.max(...rss, process.memoryUsage().rss) / 2 ** 20).toFixed(0)} MiB`)
  }
  console.log(`  median wall ${median(walls)} ms = ${(median(walls) / ideal).toFixed(2)}x the ideal ${ideal} ms`)
  await Promise.all(deployers.map((d) => d.stop()))
  await Promise.all(agents.map((a) => a.stop()))
  await deploys.stop()
  await feed.stop()
  client.close()
  store.close()
  await etcd.stop()
  removeDir(dir)
}

await main()
