// instance:deploy on the node side, with agent processes against a real etcd and releases in
// moto's S3: a rollout's N slots bound how many nodes provision at once (read from the recorder's
// intervals), a failure stops the rollout when max-errors allows none, a node killed mid-run is
// read as lost once its lease expires and its slot goes to another node, a tampered tarball is
// refused with nothing converged or switched, a node that boots later converges the group's
// current release, and a service that leaves the release is deregistered before its delete recipe.
import {existsSync, readFileSync, readlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3, type IKeyValue} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, type Groups, MACHINE, readPrefix, type RecordedRun, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {openReleaseBucket} from '../../src/release/bucket.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {waitUntil} from '../support/process.js'
import {deployKey, newDeployId, rolloutStopKey} from '../../src/registry/deploys.js'
import {type BuiltRelease, buildRelease, createBucket, maxConcurrent, putObject, readDeploy, type ReadDeploy, uploadRelease, writeDeployRequest} from '../support/release.js'

const BUCKET = 'muster-releases'
const NEW_RUN_LIST = ['recipe[base]', 'recipe[app]', 'recipe[fail2ban]']

function groups(): Groups {
  return {
    __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
    app: {run_list: ['recipe[app]']},
    api: {run_list: ['recipe[shop-service::api]', 'recipe[app]']},
    'api-spare': {run_list: ['recipe[shop-service::api]']},
  }
}

describe('muster agent: instance:deploy on the nodes (real etcd, moto S3, agent processes)', function () {
  this.timeout(180_000)
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

  /** A project, its agents, and the release helpers bound to it. */
  function setup(name: string): {project: () => AgentProject; agents: RunningAgent[]; start(node: string, group?: string, extra?: {ttl?: number; env?: Record<string, string>}): Promise<RunningAgent>; release(spec?: {runList?: string[]; services?: Array<{name: string; cookbook: string; port?: number}>}, group?: string): Promise<BuiltRelease>; until(id: string, what: string, done: (d: ReadDeploy) => boolean, timeoutMs?: number): Promise<ReadDeploy>} {
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
      async start(node, group = 'app', extra = {}) {
        const agent = await startAgent(project, {group, node, endpoints: [etcd.endpoint], ttl: extra.ttl ?? 5, wait: '50ms:500ms', drain: 1, env: {...moto.env, ...extra.env}})
        agents.push(agent)
        return agent
      },
      async release(spec = {}, group = 'app') {
        const built = await buildRelease(BUCKET, {project: name, group, runList: spec.runList ?? NEW_RUN_LIST, services: spec.services ?? [], cookbooks: {'app/recipes/default.rb': 'log "app"\n', 'fail2ban/recipes/default.rb': 'package "fail2ban"\n'}})
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
          throw new Error(`${(error as Error).message}\nlast: ${JSON.stringify(last?.progress.nodes.map((n) => [n.node, n.outcome, n.status?.message]))}\nruns:\n${describeRuns(agents.flatMap((a) => project.runs(a.node)))}`)
        }
        return last as ReadDeploy
      },
    }
  }

  it('the release bucket refuses an object over a size cap (announced length), reading it whole under the cap', async function () {
    await putObject(moto, BUCKET, 'muster/cap/big.bin', Buffer.alloc(4096, 1))
    const saved = {...process.env}
    Object.assign(process.env, moto.env)
    try {
      const bucket = openReleaseBucket({bucket: BUCKET})
      const error = await bucket.get('muster/cap/big.bin', 1024).catch((e: unknown) => e)
      expect((error as Error).message).to.equal(`s3://${BUCKET}/muster/cap/big.bin is larger than 1024 bytes`)
      expect((await bucket.get('muster/cap/big.bin', 4096)).length).to.equal(4096)
    } finally {
      for (const key of Object.keys(moto.env)) {
        if (saved[key] === undefined) delete process.env[key]
        else process.env[key] = saved[key]
      }
    }
  })

  const deployRuns = (project: AgentProject, node: string): RecordedRun[] => project.runs(node).filter((r) => r.reason === 'deploy')

  describe('six nodes, -n 2', function () {
    const s = setup('six')

    it('never more than 2 provisions at once; all six ok, each with MUSTER_REASON=deploy and the new run list; current switched', async function () {
      const nodes = Array.from({length: 6}, (_, i) => `six-${i}`)
      const agents = await Promise.all(nodes.map((node) => s.start(node, 'app', {env: {RECORD_SLEEP: '0.4'}})))
      await Promise.all(agents.map((a) => waitForBoot(a, 30_000)))
      const release = await s.release()
      const id = await writeDeployRequest(client, {project: 'six', releases: {app: release.ref}, targets: {app: nodes}, n: 2})
      const done = await s.until(id, 'all six ok', (d) => d.progress.done)
      expect(done.progress.nodes.map((n) => [n.node, n.outcome])).to.deep.equal(nodes.map((n) => [n, 'ok']))
      expect(done.progress.ok).to.equal(true)
      const project = s.project()
      const runs = nodes.flatMap((node) => deployRuns(project, node))
      expect(runs.map((r) => r.node).sort(), describeRuns(runs)).to.deep.equal(nodes)
      expect(maxConcurrent(runs), describeRuns(runs)).to.be.at.most(2)
      for (const run of runs) expect(run.runList).to.equal(NEW_RUN_LIST.join(','))
      for (const a of agents) {
        expect(readlinkSync(join(a.stateDir, 'current'))).to.equal(join('releases', release.ref.digest))
        expect(readFileSync(join(a.stateDir, 'current', 'cookbooks', 'fail2ban', 'recipes', 'default.rb'), 'utf8')).to.contain('fail2ban')
        expect((await a.health()).release).to.equal(release.ref.digest)
      }
      // Every slot went back; statuses carry their times.
      expect(done.slots.size).to.equal(0)
      for (const n of done.progress.nodes) expect(Date.parse(n.status?.finishedAt ?? '')).to.be.at.least(Date.parse(n.status?.startedAt ?? ''))
      // Each node's record (written with its result) says how its deploy run went, on its live lease.
      for (const a of agents) {
        const kv = (await client.get(`/muster/six/nodes/${a.node}`).exec()).kvs[0]
        const record = JSON.parse(kv?.value.toString() ?? '{}') as {provision?: {state: string; ok: boolean; reason: string}}
        expect(record.provision, a.node).to.include({state: 'idle', ok: true, reason: 'deploy'})
        expect(String(kv?.lease)).to.equal(String((await a.health()).registry.leaseId))
      }
    })

    it('a restarted node does not run the same deploy again', async function () {
      const project = s.project()
      const agent = s.agents[0] as RunningAgent
      const before = deployRuns(project, agent.node).length
      expect(await agent.stop()).to.equal(0)
      const again = await s.start(agent.node, 'app')
      await waitForBoot(again, 30_000)
      // Its boot converged the release it runs (from its current link), not a second deploy.
      await waitUntil('boot run recorded', async () => project.runs(agent.node).filter((r) => r.reason === 'boot').length >= 2, {timeoutMs: 10_000})
      const boot = project.runs(agent.node).filter((r) => r.reason === 'boot').at(-1) as RecordedRun
      expect(boot.runList).to.equal(NEW_RUN_LIST.join(','))
      await new Promise((r) => setTimeout(r, 1000))
      expect(deployRuns(project, agent.node).length).to.equal(before)
    })
    it('a node starts nothing for a rollout already stopped or past its deadline', async function () {
      const project = s.project()
      const live = s.agents.filter((a) => !a.proc.hasExited())
      const nodes = live.map((a) => a.node).sort()
      expect(nodes).to.have.length(6)
      const before = nodes.map((n) => deployRuns(project, n).length)
      const release = await s.release({runList: ['recipe[app]', 'recipe[late]']})
      const late = await writeDeployRequest(client, {project: 'six', releases: {app: release.ref}, targets: {app: nodes}, n: 6, deadlineMs: -1000, setGroupRelease: false})
      const cancelled = newDeployId(new Date())
      await client.put(rolloutStopKey('six', cancelled)).value(JSON.stringify({reason: 'cancelled', at: new Date().toISOString(), by: 'test'}))
      await client.put(deployKey('six', cancelled)).value(JSON.stringify({id: cancelled, groups: ['app'], n: 6, maxErrors: 0, releases: {app: release.ref}, targets: {app: nodes}, requestedAt: new Date().toISOString(), requestedBy: 'test', deadline: new Date(Date.now() + 60_000).toISOString()}))
      await new Promise((r) => setTimeout(r, 2000))
      for (const id of [late, cancelled]) {
        const d = await readDeploy(client, 'six', id)
        expect(d.state.statuses.size, id).to.equal(0)
        expect(d.slots.size).to.equal(0)
      }
      expect(nodes.map((n) => deployRuns(project, n).length)).to.deep.equal(before)
      for (const a of live) expect((await a.health()).deploy).to.deep.equal({deploy: null, phase: null})
    })
  })

  describe('a failing node with --max-errors 0', function () {
    const s = setup('fails')

    it('is reported failed with its log lines, the stop key is written, and no slot is handed out after it', async function () {
      const project = s.project()
      writeFileSync(join(project.recordDir, 'fails-0.fail'), '')
      // Its run takes a while, so the others join while it holds the only slot.
      const first = await s.start('fails-0', 'app', {env: {RECORD_SLEEP: '2'}})
      await waitUntil('fails-0 registered', async () => (await first.health()).registry.leaseId !== null, {timeoutMs: 15_000, proc: first.proc})
      const release = await s.release()
      const nodes = ['fails-0', 'fails-1', 'fails-2']
      const id = await writeDeployRequest(client, {project: 'fails', releases: {app: release.ref}, targets: {app: nodes}, n: 1, maxErrors: 0})
      await s.until(id, 'fails-0 running', (d) => d.state.statuses.get('fails-0')?.state === 'running')
      await Promise.all(['fails-1', 'fails-2'].map((n) => s.start(n)))
      await s.until(id, 'the others waiting', (d) => d.state.statuses.get('fails-1')?.state === 'waiting' && d.state.statuses.get('fails-2')?.state === 'waiting')
      const done = await s.until(id, 'the rollout halted', (d) => d.progress.done && d.state.stop !== undefined)
      const failed = done.state.statuses.get('fails-0')
      expect(failed?.state).to.equal('failed')
      expect(failed?.message).to.contain('exit 3').and.to.contain('FATAL: recipe failed on fails-0').and.to.contain('converging fails-0 (deploy)')
      expect(done.state.stop?.reason).to.equal('max-errors')
      expect(done.progress.counts.skipped).to.equal(2)
      await new Promise((r) => setTimeout(r, 1000))
      expect(deployRuns(project, 'fails-1')).to.deep.equal([])
      expect(deployRuns(project, 'fails-2')).to.deep.equal([])
      expect((await readDeploy(client, 'fails', id)).slots.size).to.equal(0)
    })
  })

  describe('a node stopped (SIGTERM) mid-provision', function () {
    const s = setup('stopped')

    it('reports its run failed (not lost), gives the slot back, and the next node takes it', async function () {
      const project = s.project()
      writeFileSync(join(project.recordDir, 'stopped-0.hang'), '20')
      const nodes = ['stopped-0', 'stopped-1']
      const agents = await Promise.all(nodes.map((n) => s.start(n, 'app')))
      await Promise.all(agents.map((a) => waitForBoot(a, 30_000)))
      const release = await s.release()
      const id = await writeDeployRequest(client, {project: 'stopped', releases: {app: release.ref}, targets: {app: nodes}, n: 1, maxErrors: 1})
      await waitUntil('stopped-0 provisioning', async () => existsSync(join(project.recordDir, 'stopped-0.lock')), {timeoutMs: 15_000})
      expect(await (agents[0] as RunningAgent).stop()).to.equal(0)
      const done = await s.until(id, 'both settled', (d) => d.progress.done)
      expect(done.progress.nodes.map((n) => [n.node, n.outcome])).to.deep.equal([['stopped-0', 'failed'], ['stopped-1', 'ok']])
      expect(done.slots.size).to.equal(0)
    })
  })

  describe('a node killed mid-provision', function () {
    const s = setup('killed')

    it('reads as lost once its lease expires, and another node takes its slot', async function () {
      const project = s.project()
      // Hangs 20 s, then ends on its own (the agent that ran it is gone by then).
      writeFileSync(join(project.recordDir, 'killed-0.hang'), '20')
      const victim = await s.start('killed-0', 'app', {ttl: 2})
      await waitForBoot(victim, 30_000)
      const release = await s.release()
      const nodes = ['killed-0', 'killed-1', 'killed-2']
      const id = await writeDeployRequest(client, {project: 'killed', releases: {app: release.ref}, targets: {app: nodes}, n: 1, maxErrors: 1})
      const running = await s.until(id, 'killed-0 running', (d) => d.state.statuses.get('killed-0')?.state === 'running')
      expect(running.progress.counts.running).to.equal(1)
      await Promise.all(['killed-1', 'killed-2'].map((n) => s.start(n, 'app', {ttl: 2})))
      await waitUntil('killed-0 provisioning', async () => existsSync(join(project.recordDir, 'killed-0.lock')), {timeoutMs: 15_000})
      victim.signal('SIGKILL')
      await victim.proc.exited
      const killedAt = Date.now()
      const lost = await s.until(id, 'killed-0 lost', (d) => d.progress.nodes.find((n) => n.node === 'killed-0')?.outcome === 'lost', 20_000)
      expect(lost.state.statuses.get('killed-0')?.state).to.equal('running')
      const done = await s.until(id, 'the others ok', (d) => d.progress.done)
      expect(done.progress.nodes.map((n) => [n.node, n.outcome])).to.deep.equal([['killed-0', 'lost'], ['killed-1', 'ok'], ['killed-2', 'ok']])
      const others = ['killed-1', 'killed-2'].flatMap((n) => deployRuns(project, n))
      expect(others).to.have.length(2)
      for (const run of others) expect(run.start).to.be.above(killedAt)
      expect(maxConcurrent(others)).to.equal(1)
    })
  })

  describe('waiting nodes that died (or forged waiting statuses) ahead in line', function () {
    const s = setup('line')

    it('hold nobody up for long: the live nodes take the slot after a quiet spell', async function () {
      const release = await s.release()
      const live = ['z-1', 'z-2']
      const dead = ['a-dead-0', 'a-dead-1', 'a-dead-2', 'a-dead-3']
      const agents = await Promise.all(live.map((n) => s.start(n)))
      await Promise.all(agents.map((a) => waitForBoot(a, 30_000)))
      // They sort first and say `waiting` (written before the request), but no agent stands behind them.
      const id = newDeployId(new Date())
      for (const node of dead) await client.put(`/muster/line/rollout/${id}/nodes/${node}`).value(JSON.stringify({node, group: 'app', state: 'waiting', startedAt: null, finishedAt: null, message: null, lease: null}))
      await writeDeployRequest(client, {id, project: 'line', releases: {app: release.ref}, targets: {app: [...dead, ...live]}, n: 1})
      const done = await s.until(id, 'the live nodes ok', (d) => live.every((n) => d.state.statuses.get(n)?.state === 'ok'), 30_000)
      // The forged ones stay waiting; nothing claims in their name.
      expect(done.progress.counts.waiting).to.equal(4)
      expect(maxConcurrent(live.flatMap((n) => deployRuns(s.project(), n)))).to.equal(1)
    })
  })

  describe('a tampered tarball', function () {
    const s = setup('tamper')

    it('is refused: digest mismatch reported, nothing provisioned, the current release unchanged', async function () {
      const project = s.project()
      const agent = await s.start('tamper-0')
      await waitForBoot(agent, 30_000)
      const good = await s.release({runList: ['recipe[app]']})
      const first = await writeDeployRequest(client, {project: 'tamper', releases: {app: good.ref}, targets: {app: ['tamper-0']}, n: 1})
      await s.until(first, 'the first deploy ok', (d) => d.progress.ok)
      const deploysBefore = deployRuns(project, agent.node).length
      const bad = await s.release({runList: NEW_RUN_LIST})
      // Someone with write access to the bucket replaces the cookbooks after the release was made.
      await putObject(moto, BUCKET, bad.tarballKey as string, Buffer.concat([bad.tarball as Buffer, Buffer.from('evil')]))
      const second = await writeDeployRequest(client, {project: 'tamper', releases: {app: bad.ref}, targets: {app: ['tamper-0']}, n: 1})
      const done = await s.until(second, 'the second deploy finished', (d) => d.progress.done)
      const status = done.state.statuses.get('tamper-0')
      expect(status?.state).to.equal('failed')
      expect(status?.message).to.match(/digest mismatch/)
      expect(deployRuns(project, agent.node).length).to.equal(deploysBefore)
      expect(readlinkSync(join(agent.stateDir, 'current'))).to.equal(join('releases', good.ref.digest))
      expect(existsSync(join(agent.stateDir, 'releases', bad.ref.digest))).to.equal(false)
      expect((await agent.health()).release).to.equal(good.ref.digest)
    })
  })

  describe('etcd down when a node\'s provision ends', function () {
    const s = setup('outage')

    it('the node reports its result once etcd is back: ok, not lost, and the rollout goes on', async function () {
      const project = s.project()
      writeFileSync(join(project.recordDir, 'outage-0.hang'), '4')
      const first = await s.start('outage-0', 'app', {ttl: 3})
      await waitForBoot(first, 30_000)
      const second = await s.start('outage-1', 'app', {ttl: 3})
      await waitForBoot(second, 30_000)
      const release = await s.release()
      const id = await writeDeployRequest(client, {project: 'outage', releases: {app: release.ref}, targets: {app: ['outage-0', 'outage-1']}, n: 1, maxErrors: 0})
      await s.until(id, 'outage-0 running', (d) => d.state.statuses.get('outage-0')?.state === 'running')
      await waitUntil('outage-0 provisioning', async () => existsSync(join(project.recordDir, 'outage-0.lock')), {timeoutMs: 15_000})
      await etcd.halt()
      // The provision ends (and its result cannot be written) while etcd is away.
      await waitUntil('outage-0 deploy run over', async () => deployRuns(project, 'outage-0').length === 1, {timeoutMs: 20_000})
      await new Promise((r) => setTimeout(r, 1000))
      await etcd.resume()
      const done = await s.until(id, 'the rollout done', (d) => d.progress.done, 60_000)
      expect(done.progress.nodes.map((n) => [n.node, n.outcome])).to.deep.equal([['outage-0', 'ok'], ['outage-1', 'ok']])
      expect(done.state.stop).to.equal(undefined)
      expect(first.proc.hasExited()).to.equal(false)
    })
  })

  describe('a node that boots after the deploy', function () {
    const s = setup('late')

    it('converges the group\'s current release at boot, without taking a slot', async function () {
      const project = s.project()
      const early = await s.start('late-0')
      await waitForBoot(early, 30_000)
      const release = await s.release()
      const id = await writeDeployRequest(client, {project: 'late', releases: {app: release.ref}, targets: {app: ['late-0']}, n: 1})
      await s.until(id, 'the deploy ok', (d) => d.progress.ok)
      const late = await s.start('late-1')
      await waitForBoot(late, 30_000)
      const boot = project.runs('late-1').filter((r) => r.reason === 'boot')
      expect(boot).to.have.length(1)
      expect(boot[0]?.runList).to.equal(NEW_RUN_LIST.join(','))
      expect(readlinkSync(join(late.stateDir, 'current'))).to.equal(join('releases', release.ref.digest))
      expect((await late.health()).release).to.equal(release.ref.digest)
      const after = await readDeploy(client, 'late', id)
      expect(after.state.statuses.has('late-1')).to.equal(false)
      expect(deployRuns(project, 'late-1')).to.deep.equal([])
    })
  })

  describe('a service removed from the group\'s release', function () {
    const s = setup('removal')

    it('is deregistered before its delete recipe runs, then the release converges', async function () {
      const project = s.project()
      const agent = await s.start('removal-0', 'api')
      await waitForBoot(agent, 30_000)
      expect((await agent.health()).registered).to.deep.equal(['api'])
      const key = '/muster/removal/services/api/removal-0'
      expect((await readPrefix(client, key)).size).to.equal(1)
      const deletes: number[] = []
      const watcher = await client.watch().key(key).create()
      watcher.on('delete', (kv: IKeyValue) => deletes.push(Number(kv.mod_revision)))
      try {
        const release = await s.release({runList: ['recipe[app]'], services: []}, 'api')
        const id = await writeDeployRequest(client, {project: 'removal', releases: {api: release.ref}, targets: {api: ['removal-0']}, n: 1})
        await s.until(id, 'the deploy ok', (d) => d.progress.ok)
        const runs = project.runs('removal-0')
        const del = runs.find((r) => r.runList === 'recipe[shop-service::delete-api]')
        const deploy = runs.find((r) => r.reason === 'deploy')
        expect(del, describeRuns(runs)).to.not.equal(undefined)
        expect(deletes).to.have.length(1)
        // The delete recipe's attributes reflect a registry at or past the deregistration.
        expect((del as RecordedRun).revision).to.be.at.least(deletes[0] as number)
        expect((del as RecordedRun).start).to.be.at.most((deploy as RecordedRun).start)
        expect(deploy?.runList).to.equal('recipe[app]')
        const health = await agent.health()
        expect(health.registered).to.deep.equal([])
        expect(health.services).to.deep.equal([])
      } finally {
        await watcher.cancel()
      }
    })
  })
})
