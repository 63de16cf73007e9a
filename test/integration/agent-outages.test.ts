// `muster agent` processes through registry outages: etcd restarted under 20 agents, the leader of
// a 3-member cluster killed, and a watch whose revision was compacted away while the agent was
// stopped. Agents never exit, register again, and miss no dependency change.
import {expect} from 'chai'
import {Etcd3, type IKeyValue} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, type EtcdCluster, MACHINE, metricValue, overlaps, readPrefix, type RecordedRun, type RunningAgent, serviceValue, servicesIn, startAgent, startEtcdCluster, stopAll, waitForBoot} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {findTool, requireTool} from '../support/integration.js'
import {sleep, waitUntil} from '../support/process.js'
import {execFileSync} from 'node:child_process'

const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
  api: {run_list: ['recipe[shop-service::api]']},
  web: {depends_on: ['api'], run_list: ['recipe[web]']},
}

/** Waits until every dependent has a run (started after `since`) whose api list is exactly `nodes`. */
async function allReflect(project: AgentProject, webs: readonly RunningAgent[], since: number, nodes: string[], timeoutMs: number): Promise<void> {
  const want = JSON.stringify([...nodes].sort())
  for (const web of webs) {
    await waitUntil(`${web.node} to provision with api = ${want}`, async () => {
      const runs = project.runs(web.node).filter((r) => r.start >= since)
      return runs.some((r) => JSON.stringify(servicesIn(r, 'api')) === want)
    }, {proc: web.proc, timeoutMs, intervalMs: 100}).catch((error: Error) => {
      throw new Error(`${error.message}\n${describeRuns(project.runs(web.node))}\n${web.proc.output().slice(-3000)}`)
    })
  }
}

/** Every agent's node key (and service keys) present, on the lease the agent says it holds. */
async function allRegistered(client: Etcd3, project: AgentProject, agents: readonly RunningAgent[]): Promise<string[]> {
  const keys = await readPrefix(client, `/muster/${project.project}/`)
  const missing: string[] = []
  for (const a of agents) {
    const health = await a.health()
    const wanted = [`/muster/${project.project}/nodes/${a.node}`, ...health.services.map((s) => `/muster/${project.project}/services/${s}/${a.node}`)]
    for (const key of wanted) {
      const kv = keys.get(key)
      if (!kv) missing.push(`${key} missing`)
      else if (kv.lease !== health.registry.leaseId) missing.push(`${key} on lease ${kv.lease}, agent holds ${health.registry.leaseId}`)
    }
  }
  return missing
}

describe('muster agent: outages (real etcd, agent processes)', function () {
  this.timeout(120_000)

  before(function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'etcdctl', 'scripts/ci/install-etcd.sh')
  })

  describe('etcd restarted under 20 agents', function () {
    let etcd: EtcdServer
    let client: Etcd3
    let project: AgentProject
    let agents: RunningAgent[] = []
    const TTL = 3

    before(async function () {
      etcd = await startEtcd()
      client = new Etcd3({hosts: etcd.endpoint})
      project = createAgentProject('restart', GROUPS)
    })

    after(async function () {
      await stopAll(agents)
      client?.close()
      await etcd?.stop()
      project?.cleanup()
    })

    it('all register again within TTL + 2 s, none exits, and a change made as etcd comes back is acted on', async function () {
      const common = {endpoints: [etcd.endpoint], ttl: TTL, wait: '200ms:2s', drain: 1}
      const apis = ['api-1', 'api-2', 'api-3', 'api-4']
      const webNodes = Array.from({length: 16}, (_, i) => `web-${i + 1}`)
      agents = await Promise.all([
        ...apis.map((node) => startAgent(project, {...common, group: 'api', node})),
        ...webNodes.map((node) => startAgent(project, {...common, group: 'web', node})),
      ])
      const webs = agents.filter((a) => a.group === 'web')
      await Promise.all(agents.map((a) => waitForBoot(a, 30_000)))
      const booted = Date.now()
      await allReflect(project, webs, 0, apis, 15_000)
      expect(await allRegistered(client, project, agents)).to.deep.equal([])
      // Quiet before the outage: no run queued or going (a run queued before it may rightly start on the last view).
      await waitUntil('every agent idle', async () => (await Promise.all(agents.map((a) => a.health()))).every((h) => !h.queue.running && !h.queue.provisionPending), {timeoutMs: 10_000, intervalMs: 100})

      // Down for longer than 2 × TTL: every agent's client gives its lease up as lost.
      const haltedAt = Date.now()
      await etcd.halt()
      await sleep(2 * TTL * 1000 + 1000)
      const during = await Promise.all(agents.map((a) => a.health()))
      expect(during.filter((h) => h.registry.connected).map((h) => h.node), 'agents notice the outage').to.deep.equal([])
      await etcd.resume()
      const backAt = Date.now()
      // A change made right as etcd comes back, before the agents' watches have reconnected.
      const late = client.lease(60)
      await late.put('/muster/restart/services/api/late-1').value(serviceValue('late-1', 'api', '10.9.0.1', 8080))

      let missing: string[] = []
      await waitUntil('every agent registered again', async () => {
        missing = await allRegistered(client, project, agents)
        return missing.length === 0
      }, {timeoutMs: backAt + (TTL + 2) * 1000 - Date.now(), intervalMs: 200}).catch((error: Error) => {
        throw new Error(`${error.message}: ${missing.join('; ')}`)
      })
      // Past the old leases' expiry (etcd gives them a fresh TTL when it comes back), still there.
      await sleep(Math.max(0, backAt + (TTL + 2) * 1000 + 500 - Date.now()))
      expect(await allRegistered(client, project, agents)).to.deep.equal([])

      await allReflect(project, webs, backAt, [...apis, 'late-1'], 15_000)
      const exited = agents.filter((a) => a.proc.hasExited()).map((a) => `${a.node}: ${a.proc.output().slice(-500)}`)
      expect(exited, 'no agent exits').to.deep.equal([])
      // Nothing ran during the outage: no provision from a partial (or stale-and-changing) view.
      const duringOutage = agents.flatMap((a) => project.runs(a.node)).filter((r) => r.start > booted && r.start >= haltedAt && r.start < backAt)
      expect(duringOutage.map((r) => `${r.node} ${r.reason}`)).to.deep.equal([])
      for (const a of agents) expect(overlaps(project.runs(a.node))).to.deep.equal([])
      const metrics = await (agents[4] as RunningAgent).metrics()
      expect(metricValue(metrics, 'muster_agent_registry_reconnects_total'), metrics).to.be.at.least(1)
      await late.revoke()
    })
  })

  describe('a 3-member etcd cluster losing its leader', function () {
    let cluster: EtcdCluster
    let client: Etcd3
    let project: AgentProject
    const agents: RunningAgent[] = []
    const TTL = 3

    before(async function () {
      cluster = await startEtcdCluster(3)
      client = new Etcd3({hosts: cluster.endpoints})
      project = createAgentProject('cluster', GROUPS)
    })

    after(async function () {
      await stopAll(agents)
      client?.close()
      await cluster?.stop()
      project?.cleanup()
    })

    it('agents keep their registrations past the TTL and keep reacting', async function () {
      const common = {endpoints: cluster.endpoints, ttl: TTL, wait: '200ms:2s', drain: 1}
      agents.push(await startAgent(project, {...common, group: 'api', node: 'api-1'}))
      for (const node of ['web-1', 'web-2']) agents.push(await startAgent(project, {...common, group: 'web', node}))
      const webs = agents.filter((a) => a.group === 'web')
      await Promise.all(agents.map((a) => waitForBoot(a)))
      await allReflect(project, webs, 0, ['api-1'], 15_000)

      const deleted: string[] = []
      const watcher = await client.watch().prefix('/muster/cluster/').create()
      watcher.on('delete', (kv: IKeyValue) => deleted.push(kv.key.toString()))
      try {
        const leader = await cluster.leader()
        const killedAt = Date.now()
        await cluster.kill(leader)
        await sleep(Math.max(0, killedAt + (TTL + 2) * 1000 - Date.now()))
        expect(await allRegistered(client, project, agents)).to.deep.equal([])
        expect(deleted, 'no registration lapsed').to.deep.equal([])

        const since = Date.now()
        const lease = client.lease(60)
        await lease.put('/muster/cluster/services/api/late-1').value(serviceValue('late-1', 'api', '10.9.0.1', 8080))
        await allReflect(project, webs, since, ['api-1', 'late-1'], 15_000)
        await lease.revoke()
      } finally {
        await watcher.cancel().catch(() => undefined)
      }
      expect(agents.filter((a) => a.proc.hasExited()).map((a) => a.node)).to.deep.equal([])
    })
  })

  describe('compaction past a stopped agent\'s watch revision', function () {
    let etcd: EtcdServer
    let client: Etcd3
    let project: AgentProject
    const agents: RunningAgent[] = []

    before(async function () {
      etcd = await startEtcd()
      client = new Etcd3({hosts: etcd.endpoint})
      project = createAgentProject('compact', GROUPS)
    })

    after(async function () {
      await stopAll(agents)
      client?.close()
      await etcd?.stop()
      project?.cleanup()
    })

    it('resyncs, re-provisions with the final view, and registers again after its lease expired', async function () {
      const TTL = 3
      const stopped = await startAgent(project, {group: 'web', node: 'web-1', endpoints: [etcd.endpoint], ttl: TTL, wait: '200ms:2s', drain: 1})
      const control = await startAgent(project, {group: 'web', node: 'web-2', endpoints: [etcd.endpoint], ttl: 30, wait: '200ms:2s', drain: 1})
      agents.push(stopped, control)
      await Promise.all(agents.map((a) => waitForBoot(a)))
      const lease = client.lease(60)
      const put = (node: string): Promise<unknown> => lease.put(`/muster/compact/services/api/${node}`).value(serviceValue(node, 'api', `10.8.0.${node.charCodeAt(2)}`, 8080)).exec()
      const del = (node: string): Promise<unknown> => client.delete().key(`/muster/compact/services/api/${node}`).exec()
      await put('p-a')
      await allReflect(project, agents, 0, ['p-a'], 15_000)
      const before = await stopped.health()

      // Stopped, with its connections cut under it (etcd restarted): its watch must come back
      // from a revision that no longer exists.
      stopped.signal('SIGSTOP')
      const since = Date.now()
      await etcd.restart()
      await put('p-b')
      await del('p-a')
      await put('p-c')
      await del('p-b')
      await put('p-d')
      const revision = (await client.put('/muster/compact-marker').value('x').exec()).header.revision
      execFileSync(findTool('etcdctl') as string, ['compact', String(revision), '--physical'], {env: {...process.env, ...etcd.env}, timeout: 10_000})
      // Its lease runs out while it is stopped (etcd gave it a fresh TTL on restart).
      await waitUntil('the stopped agent\'s lease to expire', async () => (await client.get('/muster/compact/nodes/web-1').string()) === null, {timeoutMs: (TTL + 3) * 1000, intervalMs: 100})
      stopped.signal('SIGCONT')

      await allReflect(project, agents, since, ['p-c', 'p-d'], 20_000)
      const runs = project.runs('web-1').filter((r) => r.start >= since)
      const last = runs.at(-1) as RecordedRun
      expect(servicesIn(last, 'api'), describeRuns(runs)).to.deep.equal(['p-c', 'p-d'])
      expect(last.revision).to.be.at.least(Number(revision))
      const metrics = await stopped.metrics()
      expect(metricValue(metrics, 'muster_agent_registry_resyncs_total'), metrics).to.be.at.least(1)
      await waitUntil('web-1 registered again on a new lease', async () => {
        const h = await stopped.health()
        const kv = (await readPrefix(client, '/muster/compact/nodes/')).get('/muster/compact/nodes/web-1')
        return kv !== undefined && h.registry.leaseId !== null && kv.lease === h.registry.leaseId && h.registry.leaseId !== before.registry.leaseId
      }, {proc: stopped.proc, timeoutMs: 10_000, intervalMs: 100})
      expect(stopped.proc.hasExited()).to.equal(false)
      for (const a of agents) expect(overlaps(project.runs(a.node))).to.deep.equal([])
      await lease.revoke()
    })
  })
})
