// `muster agent` reacting to its dependencies, as separate processes against a real etcd: a
// provider appearing or leaving re-provisions each dependent with the right attributes file, a
// non-dependent never runs again, a burst inside the wait is one run, never two runs at once.
import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, MACHINE, overlaps, type RecordedRun, type RunningAgent, serviceValue, servicesIn, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {sleep, waitUntil} from '../support/process.js'

const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}, jobs: {}}},
  api: {run_list: ['recipe[shop-service::api]']},
  web: {depends_on: ['api'], run_list: ['recipe[web]']},
  worker: {run_list: ['recipe[ops-service::jobs]']},
}

describe('muster agent: dependencies (real etcd, agent processes)', function () {
  this.timeout(90_000)
  let etcd: EtcdServer
  let client: Etcd3
  let project: AgentProject
  const agents: RunningAgent[] = []
  let webs: RunningAgent[]
  let worker: RunningAgent

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject('deps', GROUPS)
    // Each run sleeps a little, so that changes arrive while a run is going (single-flight).
    const common = {endpoints: [etcd.endpoint], ttl: 5, wait: '1s:5s', env: {RECORD_SLEEP: '0.3'}}
    webs = await Promise.all(['web-1', 'web-2'].map((node) => startAgent(project, {...common, group: 'web', node})))
    worker = await startAgent(project, {...common, group: 'worker', node: 'worker-1'})
    agents.push(...webs, worker)
    await Promise.all(agents.map((a) => waitForBoot(a)))
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    await etcd?.stop()
    project?.cleanup()
  })

  const runsOf = (a: RunningAgent): RecordedRun[] => project.runs(a.node)
  const dependencyRuns = (a: RunningAgent): RecordedRun[] => runsOf(a).filter((r) => r.reason === 'dependency')

  /** Waits until every web has a dependency run after `since` whose api list is `nodes`, and none is pending. */
  const settle = async (since: number, nodes: string[], what: string): Promise<void> => {
    for (const web of webs) {
      await waitUntil(`${web.node}: ${what}`, async () => {
        const last = dependencyRuns(web).filter((r) => r.start >= since).at(-1)
        if (!last || JSON.stringify(servicesIn(last, 'api')) !== JSON.stringify(nodes)) return false
        const h = await web.health()
        return !h.queue.provisionPending && !h.queue.running
      }, {proc: web.proc, timeoutMs: 15_000, intervalMs: 100}).catch((error: Error) => {
        throw new Error(`${error.message}\n${describeRuns(runsOf(web))}`)
      })
    }
  }

  it('the boot run gets the dna and the attributes of what the node offers and depends on', function () {
    const [boot] = runsOf(webs[0] as RunningAgent)
    expect(boot?.reason).to.equal('boot')
    expect(boot?.attributes).to.deep.include({id: 'web', run_list: ['role[role-web]']})
    expect(boot?.attributes.muster).to.deep.include({node: 'web-1', group: 'web', services: {api: []}, available: {}})
    expect(boot?.revision).to.equal(boot?.attributes.muster.revision)
    const [workerBoot] = runsOf(worker)
    expect(workerBoot?.attributes.muster.services.jobs).to.deep.equal([{node: 'worker-1', group: 'worker', address: workerBoot?.attributes.muster.services.jobs?.[0]?.address}])
    expect(workerBoot?.attributes.muster.available).to.deep.equal({jobs: true})
  })

  it('a provider appearing, then leaving, re-provisions each dependent with the right attributes file', async function () {
    const before = Date.now()
    const api = await startAgent(project, {group: 'api', node: 'api-1', address: '10.1.0.1', endpoints: [etcd.endpoint], ttl: 5, wait: '1s:5s', drain: 1})
    agents.push(api)
    await waitForBoot(api)
    await settle(before, ['api-1'], 'a run that lists api-1')
    for (const web of webs) {
      const run = dependencyRuns(web).at(-1) as RecordedRun
      expect(run.attributes.muster.services.api).to.deep.equal([{node: 'api-1', group: 'api', address: '10.1.0.1', port: 8080}])
      expect(run.attributes.muster.available).to.deep.equal({})
      expect(run.revision).to.equal(run.attributes.muster.revision)
      // The node's key says which revision its last good run reflected.
      const record = JSON.parse((await client.get(`/muster/deps/nodes/${web.node}`).string()) ?? '{}') as {provision: {ok: boolean; reason: string; revision: number}}
      expect(record.provision).to.include({ok: true, reason: 'dependency'})
      expect(record.provision.revision).to.be.at.least(run.revision)
    }

    const leaving = Date.now()
    expect(await api.stop()).to.equal(0)
    await settle(leaving, [], 'a run without api-1')
    for (const web of webs) expect((dependencyRuns(web).at(-1) as RecordedRun).attributes.muster.services.api).to.deep.equal([])
  })

  it('a burst of registrations inside the wait gives one run (at most two)', async function () {
    const lease = client.lease(30)
    const before = Date.now()
    // Ten providers inside 1 s of quiet: each put pushes the run back, never past MAX.
    for (let i = 1; i <= 10; i++) {
      await lease.put(`/muster/deps/services/api/burst-${i}`).value(serviceValue(`burst-${i}`, 'api', `10.2.0.${i}`, 8080))
      await sleep(50)
    }
    const all = Array.from({length: 10}, (_, i) => `burst-${i + 1}`).sort()
    await settle(before, all, 'a run with all ten')
    for (const web of webs) {
      const runs = dependencyRuns(web).filter((r) => r.start >= before)
      expect(runs.length, describeRuns(runs)).to.be.within(1, 2)
      expect(servicesIn(runs.at(-1) as RecordedRun, 'api')).to.deep.equal(all)
    }

    const gone = Date.now()
    await lease.revoke()
    await settle(gone, [], 'a run without the ten')
    for (const web of webs) expect(dependencyRuns(web).filter((r) => r.start >= gone).length).to.be.within(1, 2)
  })

  it('a registry that never goes quiet still gets a run within MAX, then one more; never two at once', async function () {
    const lease = client.lease(30)
    const first = Date.now()
    // A change every 300 ms for 6 s with --wait 1s:5s: quiet never comes, so MAX (5 s after the
    // first change) starts a run, and changes during it fold into one run after it.
    for (let i = 1; i <= 20; i++) {
      await lease.put(`/muster/deps/services/api/slow-${i}`).value(serviceValue(`slow-${i}`, 'api', `10.3.0.${i}`, 8080))
      await sleep(300)
    }
    const all = Array.from({length: 20}, (_, i) => `slow-${i + 1}`).sort()
    await settle(first, all, 'a run with all twenty')
    for (const web of webs) {
      const runs = dependencyRuns(web).filter((r) => r.start >= first)
      expect(runs[0]?.start, describeRuns(runs)).to.be.below(first + 5000 + 1500)
      expect(runs.length, describeRuns(runs)).to.be.within(2, 3)
    }
    const gone = Date.now()
    await lease.revoke()
    await settle(gone, [], 'a run after the revoke')
  })

  it('a non-dependent never runs beyond its boot; no node ever ran twice at once', function () {
    expect(runsOf(worker).map((r) => r.reason), describeRuns(runsOf(worker))).to.deep.equal(['boot'])
    const problems = agents.flatMap((a) => overlaps(runsOf(a)))
    expect(problems).to.deep.equal([])
    for (const a of agents) expect(a.proc.hasExited() ? a.node : '', a.proc.output()).to.be.oneOf(['', 'api-1'])
  })
})
