// One worker process of bench/deploy.ts and bench/deploy-cli.ts: a slice of the simulated fleet
// (by default 100-125 agents), as a real node would run them, with this process's own etcd
// client, registry feed and deploy feed (one watch), a Deployer per agent, a state dir each and a
// provision that sleeps --provision-ms. The fleet is spread over several of these so the harness
// (hundreds of agents' event handling in one event loop) is not what a rollout's wall time measures.
//
// Started by the bench with child_process.fork (IPC). Messages:
//   parent → worker  {type: 'objects', entries: [[key, base64]]}   release objects (in-memory bucket)
//                    {type: 'bucket', bucket}                     use that S3 bucket instead (env: moto)
//                    {type: 'collect'}                            → {type: 'runs', runs, cpuMs}, resets
//                    {type: 'profile', dir}                       CPU-profiles this process until the next collect
//                    {type: 'stop'}                               stops the agents and exits
//   worker → parent  {type: 'ready'} once every agent runs
import {writeFileSync} from 'node:fs'
import {Session} from 'node:inspector/promises'
import {join} from 'node:path'

import {Agent} from '../src/agent/agent.js'
import {Deployer} from '../src/agent/deployer.js'
import type {Identity} from '../src/agent/identity.js'
import {silentLogger} from '../src/agent/log.js'
import type {Provisioner} from '../src/agent/provisioner.js'
import {DeployFeed} from '../src/registry/deploy-feed.js'
import {openEtcd} from '../src/registry/etcd.js'
import {RegistryFeed} from '../src/registry/feed.js'
import {openReleaseBucket, type ReleaseBucket} from '../src/release/bucket.js'

export interface WorkerSpec {
  endpoint: string
  project: string
  group: string
  nodes: string[]
  provisionMs: number
  dir: string
}

export interface Run {
  node: string
  start: number
  end: number
  reason: string
}

export type ToWorker = {type: 'objects'; entries: Array<[string, string]>} | {type: 'bucket'; bucket: string} | {type: 'collect'} | {type: 'profile'; dir: string} | {type: 'stop'}
export type FromWorker = {type: 'ready'} | {type: 'runs'; runs: Run[]; cpuMs: number}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function main(spec: WorkerSpec): Promise<void> {
  const send = (message: FromWorker) => process.send?.(message)
  const objects = new Map<string, Buffer>()
  let s3: ReleaseBucket | undefined
  // Each object fetched once per worker process, as if each of its nodes fetched its own.
  const cache = new Map<string, Promise<Buffer>>()
  const openBucket = (bucket: string): ReleaseBucket => ({
    bucket,
    get: (key) => {
      let body = cache.get(key)
      if (!body) {
        const memory = objects.get(key)
        body = memory ? Promise.resolve(memory) : s3 ? s3.get(key) : Promise.reject(new Error(`no ${key}`))
        cache.set(key, body)
        body.catch(() => cache.delete(key))
      }
      return body
    },
    exists: async (key) => objects.has(key) || (s3 ? s3.exists(key) : false),
    put: async (key, body) => {
      objects.set(key, body)
    },
  })
  let runs: Run[] = []
  const provisioner = (node: string): Provisioner => ({
    run: async (request) => {
      const start = Date.now()
      await sleep(spec.provisionMs)
      runs.push({node, start, end: Date.now(), reason: request.reason})
      return {ok: true, exitCode: 0, signal: null, tail: '', durationMs: Date.now() - start}
    },
    cancel: () => undefined,
  })
  const identity = (node: string): Identity => ({node, group: spec.group, address: '127.0.0.1', services: [], dependsOn: [], dna: {id: spec.group}, dnaFile: '-', projectDir: '-'})

  const store = openEtcd({endpoints: [spec.endpoint]})
  const feed = new RegistryFeed(store, spec.project, silentLogger)
  const deploys = new DeployFeed(store, spec.project, silentLogger)
  deploys.follow(feed)
  await feed.start()
  const agents: Agent[] = []
  const deployers: Deployer[] = []
  for (let i = 0; i < spec.nodes.length; i += 50) {
    await Promise.all(spec.nodes.slice(i, i + 50).map(async (node) => {
      const stateDir = join(spec.dir, node)
      const agent = new Agent({identity: identity(node), project: spec.project, ttlSeconds: 30, wait: {minMs: 0, maxMs: 0}, drainMs: 0, stateDir, store, feed, provisioner: provisioner(node), log: silentLogger, writeFile: async () => undefined, bootProvision: false})
      await agent.start()
      const deployer = new Deployer({project: spec.project, node, group: spec.group, stateDir, store, feed: deploys, target: agent, log: silentLogger, fetch: {openBucket}})
      deployer.start()
      agents.push(agent)
      deployers.push(deployer)
    }))
  }
  let cpu = process.cpuUsage()
  let profiling: {session: Session; dir: string} | undefined
  process.on('message', (message: ToWorker) => {
    void (async () => {
      switch (message.type) {
        case 'objects':
          for (const [key, base64] of message.entries) objects.set(key, Buffer.from(base64, 'base64'))
          break
        case 'bucket':
          s3 = openReleaseBucket({bucket: message.bucket})
          break
        case 'profile': {
          const session = new Session()
          session.connect()
          await session.post('Profiler.enable')
          await session.post('Profiler.start')
          profiling = {session, dir: message.dir}
          break
        }
        case 'collect': {
          if (profiling) {
            const {profile} = await profiling.session.post('Profiler.stop')
            writeFileSync(join(profiling.dir, `rollout-${process.pid}-${Date.now()}.cpuprofile`), JSON.stringify(profile))
            profiling.session.disconnect()
            profiling = undefined
          }
          const used = process.cpuUsage(cpu)
          cpu = process.cpuUsage()
          send({type: 'runs', runs, cpuMs: Math.round((used.user + used.system) / 1000)})
          runs = []
          break
        }
        case 'stop':
          await Promise.all(deployers.map((d) => d.stop()))
          await Promise.all(agents.map((a) => a.stop()))
          await deploys.stop()
          await feed.stop()
          store.close()
          process.exit(0)
      }
    })()
  })
  send({type: 'ready'})
}

const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec
// Without the parent (it died): go too, not linger holding leases.
process.on('disconnect', () => process.exit(0))
await main(spec)
