// instance:deploy across rollouts, with agent processes against a real etcd and releases in moto's
// S3: a rollout cancelled (its stop key) while nodes wait and are queued starts nobody after it and
// leaves no slot held; rollouts back to back run on every node once each, in order; an agent
// stopped (SIGTERM) while queued or waiting exits 0, holds nobody up, and takes part once
// restarted; a release that adds a service leaves the node's record and service keys right.
import {existsSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, type Groups, MACHINE, readPrefix, type RecordedRun, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {waitUntil} from '../support/process.js'
import {rolloutStopKey} from '../../src/registry/deploys.js'
import {type BuiltRelease, buildRelease, createBucket, maxConcurrent, readDeploy, type ReadDeploy, uploadRelease, writeDeployRequest} from '../support/release.js'

const BUCKET = 'muster-releases'

function groups(): Groups {
  return {
    __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
    app: {run_list: ['recipe[app]']},
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('muster agent: instance:deploy across rollouts (real etcd, moto S3, agent processes)', function () {
  this.timeout(240_000)
  let etcd: EtcdServer
  let moto: MotoServer
  let client: Etcd3

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    this.timeout(120_000)
    ;[etcd, moto] = await Promise.all([startEtcd(), startMoto({sourceImages: []})])
    client = new Etcd3({hosts: etcd.endpoint})
    await createBucket(moto, BUCKET)
  })

  after(async function () {
    client?.close()
    await Promise.all([etcd?.stop(), moto?.stop()])
  })

  function setup(name: string): {project: () => AgentProject; agents: RunningAgent[]; start(node: string, extra?: {env?: Record<string, string>}): Promise<RunningAgent>; release(runList: string[], services?: Array<{name: string; cookbook: string; port?: number}>): Promise<BuiltRelease>; until(id: string, what: string, done: (d: ReadDeploy) => boolean, timeoutMs?: number): Promise<ReadDeploy>} {
    let project: AgentProject
    const agents: RunningAgent[] = []
    before(function () {
      project = createAgentProject(name, groups())
    })
    after(async function () {
      await stopAll(agents)
      project?.cleanup()
    })
    return {
      project: () => project,
      agents,
      async start(node, extra = {}) {
        const agent = await startAgent(project, {group: 'app', node, endpoints: [etcd.endpoint], ttl: 5, wait: '50ms:500ms', drain: 1, env: {...moto.env, ...extra.env}})
        agents.push(agent)
        return agent
      },
      async release(runList, services = []) {
        const built = await buildRelease(BUCKET, {project: name, group: 'app', runList, services, cookbooks: {'app/recipes/default.rb': 'log "app"\n'}})
        await uploadRelease(moto, BUCKET, built)
        return built
      },
      async until(id, what, done, timeoutMs = 60_000) {
        let last: ReadDeploy | undefined
        try {
          await waitUntil(what, async () => {
            last = await readDeploy(client, name, id)
            return done(last)
          }, {timeoutMs, intervalMs: 100})
        } catch (error) {
          throw new Error(`${(error as Error).message}\nlast: ${JSON.stringify(last?.progress.nodes.map((n) => [n.node, n.outcome, n.status?.state]))} slots ${JSON.stringify([...(last?.slots.keys() ?? [])])}\nruns:\n${describeRuns(agents.flatMap((a) => project.runs(a.node)))}`)
        }
        return last as ReadDeploy
      },
    }
  }

  const deployRuns = (project: AgentProject, node: string): RecordedRun[] => project.runs(node).filter((r) => r.reason === 'deploy')

  describe('deploy:cancel while nodes wait and are queued', function () {
    const s = setup('cancel')

    it('starts nobody after the stop key, leaves no slot held, and the next rollout runs on every node', async function () {
      const project = s.project()
      const nodes = Array.from({length: 6}, (_, i) => `cancel-${i}`)
      // Deploy runs hang a while: with -n 1 one node runs, those within 2n+2 of the front of the not started wait, the rest are queued.
      for (const n of nodes) writeFileSync(join(project.recordDir, `${n}.hang`), '6')
      const agents = await Promise.all(nodes.map((n) => s.start(n)))
      await Promise.all(agents.map((a) => waitForBoot(a, 60_000)))
      const first = await s.release(['recipe[app]', 'recipe[one]'])
      const id = await writeDeployRequest(client, {project: 'cancel', releases: {app: first.ref}, targets: {app: nodes}, n: 1})
      const before = await s.until(id, 'one running, three or more waiting, some queued', (d) => d.progress.counts.running === 1 && d.progress.counts.waiting >= 3 && d.state.statuses.size < nodes.length)
      const runner = nodes.find((n) => before.state.statuses.get(n)?.state === 'running') as string
      const states = new Map(nodes.map((n) => [n, before.state.statuses.get(n)?.state ?? null]))
      expect([...states.values()].filter((v) => v === null), JSON.stringify([...states])).to.have.length.at.least(1)
      const phases = new Map(await Promise.all(agents.map(async (a) => [a.node, (await a.health()).deploy.phase] as const)))
      // Not reported yet: queued, or (health read a moment after the statuses) fetching or just reported.
      for (const n of nodes) if (states.get(n) === null) expect(phases.get(n), n).to.be.oneOf(['queued', 'reporting', 'waiting'])
      expect([...phases.values()], JSON.stringify([...phases])).to.include('queued')
      await client.put(rolloutStopKey('cancel', id)).value(JSON.stringify({reason: 'cancelled', at: new Date().toISOString(), by: 'test'}))
      await s.until(id, 'the runner finished', (d) => d.state.statuses.get(runner)?.state === 'ok', 30_000)
      // Past a quiet spell (2-4 s): nobody takes the freed slot.
      await sleep(5000)
      const after = await readDeploy(client, 'cancel', id)
      expect(after.slots.size).to.equal(0)
      // Nobody else started (a node that was fetching may still report `waiting` once: it gives up at once after).
      for (const n of nodes) expect(after.state.statuses.get(n)?.state ?? null, n).to.be.oneOf(n === runner ? ['ok'] : states.get(n) === null ? [null, 'waiting'] : ['waiting'])
      expect(nodes.map((n) => deployRuns(project, n).length)).to.deep.equal(nodes.map((n) => (n === runner ? 1 : 0)))
      for (const a of agents) expect((await a.health()).deploy, a.node).to.deep.equal({deploy: null, phase: null})
      for (const n of nodes) rmSync(join(project.recordDir, `${n}.hang`))
      const second = await s.release(['recipe[app]', 'recipe[two]'])
      const next = await writeDeployRequest(client, {project: 'cancel', releases: {app: second.ref}, targets: {app: nodes}, n: 2})
      const done = await s.until(next, 'the next rollout done', (d) => d.progress.done, 90_000)
      expect(done.progress.nodes.map((n) => [n.node, n.outcome])).to.deep.equal(nodes.map((n) => [n, 'ok']))
      expect(done.slots.size).to.equal(0)
      const runs = nodes.flatMap((n) => deployRuns(project, n).filter((r) => r.runList === 'recipe[app],recipe[two]'))
      expect(runs.map((r) => r.node).sort(), describeRuns(runs)).to.deep.equal(nodes)
      expect(maxConcurrent(runs)).to.be.at.most(2)
      for (const a of agents) expect((await a.health()).release, a.node).to.equal(second.ref.digest)
    })
  })

  describe('rollouts back to back', function () {
    const s = setup('b2b')

    it('each node runs each rollout once, in order, never more than n at once per rollout', async function () {
      const project = s.project()
      const nodes = Array.from({length: 6}, (_, i) => `b2b-${i}`)
      const agents = await Promise.all(nodes.map((n) => s.start(n, {env: {RECORD_SLEEP: '0.3'}})))
      await Promise.all(agents.map((a) => waitForBoot(a, 60_000)))
      const lists = [['recipe[app]', 'recipe[a]'], ['recipe[app]', 'recipe[b]'], ['recipe[app]', 'recipe[c]']]
      const releases = []
      for (const l of lists) releases.push(await s.release(l))
      const [ra, rb, rc] = releases as [BuiltRelease, BuiltRelease, BuiltRelease]
      const a = await writeDeployRequest(client, {project: 'b2b', releases: {app: ra.ref}, targets: {app: nodes}, n: 1})
      await s.until(a, 'the first rollout under way', (d) => d.progress.counts.running + d.progress.counts.ok >= 1)
      // Requested while the first runs (nodes are queued in it still).
      const b = await writeDeployRequest(client, {project: 'b2b', releases: {app: rb.ref}, targets: {app: nodes}, n: 2})
      await s.until(a, 'the first rollout done', (d) => d.progress.done, 90_000)
      await s.until(b, 'the second rollout done', (d) => d.progress.done, 90_000)
      // Requested the moment the second ends.
      const c = await writeDeployRequest(client, {project: 'b2b', releases: {app: rc.ref}, targets: {app: nodes}, n: 1})
      await s.until(c, 'the third rollout done', (d) => d.progress.done, 90_000)
      for (const [id, n] of [[a, 1], [b, 2], [c, 1]] as const) {
        const d = await readDeploy(client, 'b2b', id)
        expect(d.progress.nodes.map((x) => [x.node, x.outcome]), id).to.deep.equal(nodes.map((x) => [x, 'ok']))
        expect(d.slots.size).to.equal(0)
        const list = lists[[a, b, c].indexOf(id)]?.join(',')
        const runs = nodes.flatMap((x) => deployRuns(project, x).filter((r) => r.runList === list))
        expect(runs.map((r) => r.node).sort(), describeRuns(runs)).to.deep.equal(nodes)
        expect(maxConcurrent(runs), describeRuns(runs)).to.be.at.most(n)
      }
      for (const x of nodes) expect(deployRuns(project, x).map((r) => r.runList), x).to.deep.equal(lists.map((l) => l.join(',')))
      for (const ag of agents) expect((await ag.health()).release).to.equal(rc.ref.digest)
    })
  })

  describe('an agent stopped (SIGTERM) while queued or waiting', function () {
    const s = setup('term')

    it('exits 0, the others finish, no slot is left held, and restarted it takes part', async function () {
      const project = s.project()
      const nodes = Array.from({length: 6}, (_, i) => `term-${i}`)
      for (const n of nodes) writeFileSync(join(project.recordDir, `${n}.hang`), '5')
      const agents = await Promise.all(nodes.map((n) => s.start(n)))
      await Promise.all(agents.map((ag) => waitForBoot(ag, 60_000)))
      const release = await s.release(['recipe[app]', 'recipe[term]'])
      const id = await writeDeployRequest(client, {project: 'term', releases: {app: release.ref}, targets: {app: nodes}, n: 1, maxErrors: 0})
      const before = await s.until(id, 'one running, three or more waiting, some queued', (d) => d.progress.counts.running === 1 && d.progress.counts.waiting >= 3 && d.state.statuses.size < nodes.length)
      // An agent reads its own `waiting` back (the watch event) before its write's answer moves it
      // from `reporting` to `waiting`: ask until the phases have caught up with the statuses.
      let phases = new Map<string, string | null>()
      const pick = (): {waiting: string | undefined; queued: string | undefined} => ({
        waiting: nodes.find((n) => before.state.statuses.get(n)?.state === 'waiting' && phases.get(n) === 'waiting'),
        queued: nodes.find((n) => phases.get(n) === 'queued'),
      })
      await waitUntil('a waiting and a queued agent', async () => {
        phases = new Map(await Promise.all(agents.map(async (ag) => [ag.node, (await ag.health()).deploy.phase] as const)))
        return pick().waiting !== undefined && pick().queued !== undefined
      }, {timeoutMs: 10_000}).catch(() => undefined)
      const waiting = pick().waiting as string
      const queued = pick().queued as string
      expect(waiting, JSON.stringify([...phases])).to.be.a('string')
      expect(queued, JSON.stringify([...phases])).to.be.a('string')
      for (const n of nodes) rmSync(join(project.recordDir, `${n}.hang`))
      const victims = [waiting, queued].map((n) => agents.find((ag) => ag.node === n) as RunningAgent)
      const [waitingExit, queuedExit] = await Promise.all(victims.map((v) => v.stop()))
      expect(waitingExit).to.equal(0)
      expect(queuedExit).to.equal(0)
      const live = nodes.filter((n) => n !== waiting && n !== queued)
      const mid = await s.until(id, 'the live nodes ok', (d) => live.every((n) => d.state.statuses.get(n)?.state === 'ok'), 60_000)
      expect(mid.state.stop).to.equal(undefined)
      await s.until(id, 'no slot held', (d) => d.slots.size === 0, 5000)
      const again = await Promise.all([waiting, queued].map((n) => s.start(n)))
      await Promise.all(again.map((ag) => waitForBoot(ag, 60_000)))
      const done = await s.until(id, 'all ok', (d) => d.progress.done, 60_000)
      expect(done.progress.nodes.map((n) => [n.node, n.outcome])).to.deep.equal(nodes.map((n) => [n, 'ok']))
      expect(done.slots.size).to.equal(0)
      const runs = nodes.flatMap((n) => deployRuns(project, n))
      expect(runs.map((r) => r.node).sort(), describeRuns(runs)).to.deep.equal(nodes)
      expect(maxConcurrent(runs)).to.equal(1)
    })
  })

  describe('a release that adds a service', function () {
    const s = setup('added')

    it('registers the new service on the node\'s lease, with the node record of the deploy run; /health says the release', async function () {
      const agent = await s.start('added-0')
      await waitForBoot(agent, 60_000)
      expect((await agent.health()).registered).to.deep.equal([])
      const release = await s.release(['recipe[app]', 'recipe[web]'], [{name: 'web', cookbook: 'app', port: 9090}])
      const id = await writeDeployRequest(client, {project: 'added', releases: {app: release.ref}, targets: {app: ['added-0']}, n: 1})
      await s.until(id, 'the deploy ok', (d) => d.progress.ok)
      await waitUntil('web registered', async () => (await agent.health()).registered.includes('web'), {timeoutMs: 10_000})
      const health = await agent.health()
      expect(health.release).to.equal(release.ref.digest)
      expect(health.registered).to.deep.equal(['web'])
      const lease = String(health.registry.leaseId)
      const services = await readPrefix(client, '/muster/added/services/')
      expect([...services.keys()].sort()).to.deep.equal(['/muster/added/services/web/added-0'])
      for (const [key, v] of services) expect(v.lease, key).to.equal(lease)
      const kv = (await client.get('/muster/added/nodes/added-0').exec()).kvs[0]
      expect(String(kv?.lease)).to.equal(lease)
      const record = JSON.parse(kv?.value.toString() ?? '{}') as {provision?: {state: string; ok: boolean; reason: string}}
      expect(record.provision).to.include({state: 'idle', ok: true, reason: 'deploy'})
    })
  })

  describe('a node whose lease expired mid-run (paused), whose slot went to the next node', function () {
    const s = setup('paused')

    it('does not take that slot from the node now holding it when its own run ends: never more than n at once', async function () {
      const project = s.project()
      const nodes = ['paused-0', 'paused-1', 'paused-2']
      for (const n of nodes) writeFileSync(join(project.recordDir, `${n}.hang`), '4')
      const agents = await Promise.all(nodes.map((n) => s.start(n)))
      await Promise.all(agents.map((ag) => waitForBoot(ag, 60_000)))
      const release = await s.release(['recipe[app]', 'recipe[paused]'])
      const id = await writeDeployRequest(client, {project: 'paused', releases: {app: release.ref}, targets: {app: nodes}, n: 1, maxErrors: 1})
      const started = await s.until(id, 'one running, the others waiting', (d) => d.progress.counts.running === 1 && d.progress.counts.waiting === 2)
      const paused = nodes.find((n) => started.state.statuses.get(n)?.state === 'running') as string
      const others = nodes.filter((n) => n !== paused)
      // The next ones run long: the first to get the freed slot still runs when the paused node reports.
      for (const n of others) writeFileSync(join(project.recordDir, `${n}.hang`), '12')
      await waitUntil(`${paused} provisioning`, async () => existsSync(join(project.recordDir, `${paused}.lock`)), {timeoutMs: 15_000})
      const first = agents[nodes.indexOf(paused)] as RunningAgent
      // Paused (a long GC pause, a frozen VM): its keep-alives stop, its lease expires, its slot goes.
      first.signal('SIGSTOP')
      const next = await s.until(id, 'another node running in the freed slot', (d) => others.some((n) => d.state.statuses.get(n)?.state === 'running') && d.slots.size === 1, 30_000)
      const holder = others.find((n) => next.state.statuses.get(n)?.state === 'running') as string
      // Its provision (not paused) ends meanwhile; then the agent goes on and reports it.
      await waitUntil(`${paused} deploy run over`, async () => deployRuns(project, paused).length === 1, {timeoutMs: 20_000})
      first.signal('SIGCONT')
      await s.until(id, `${paused} reported`, (d) => d.state.statuses.get(paused)?.state === 'ok', 30_000)
      await sleep(1000)
      const after = await readDeploy(client, 'paused', id)
      // The node now running still holds its slot (deleted, it reads as lost and the slot goes to a third node).
      expect(after.state.statuses.get(holder)?.state, holder).to.equal('running')
      expect([...after.slots.values()], `slots while ${holder} runs`).to.deep.equal([after.state.statuses.get(holder)?.lease])
      expect(after.progress.counts.running).to.equal(1)
      const settled = await s.until(id, 'all settled', (d) => d.progress.done, 60_000)
      const runs = others.flatMap((n) => deployRuns(project, n))
      expect(runs, `paused ${paused} holder ${holder}\n${describeRuns(nodes.flatMap((n) => project.runs(n)))}\n${JSON.stringify([...settled.state.statuses.values()])} slots ${JSON.stringify([...settled.slots])} stop ${JSON.stringify(settled.state.stop)}`).to.have.length(2)
      expect(maxConcurrent(runs), describeRuns(runs)).to.equal(1)
    })
  })
})
