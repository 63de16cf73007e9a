// Decommission before removal, with agent processes against a real etcd: when a service leaves a
// node's run list (nodes file edited, SIGHUP), every dependent's provision that reflects the
// deregistration finishes before the service's delete recipe starts — checked 50 times in a row —
// and a dependent that never provisions holds the delete back for --drain, no longer.
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3, type IKeyValue} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, type Groups, MACHINE, overlaps, type RecordedRun, type RunningAgent, servicesIn, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {waitUntil} from '../support/process.js'

const DELETE = 'recipe[shop-service::delete-api]'

function groups(providerRunsApi: boolean): Groups {
  return {
    __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
    api: {run_list: providerRunsApi ? ['recipe[shop-service::api]', 'recipe[app]'] : ['recipe[app]']},
    // Another group still runs api, so the nodes file stays valid while the provider's group doesn't.
    'api-spare': {run_list: ['recipe[shop-service::api]']},
    web: {depends_on: ['api'], run_list: ['recipe[web]']},
  }
}

interface Deletion {
  revision: number
}

describe('muster agent: decommission before removal (real etcd, agent processes)', function () {
  this.timeout(120_000)
  let etcd: EtcdServer
  let client: Etcd3

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
  })

  after(async function () {
    client?.close()
    await etcd?.stop()
  })

  /** Records the revision of every deletion of `key` (a tombstone's mod_revision is the delete's revision). */
  async function watchDeletes(key: string): Promise<{deletes: Deletion[]; puts: number[]; cancel(): Promise<void>}> {
    const deletes: Deletion[] = []
    const puts: number[] = []
    const watcher = await client.watch().key(key).create()
    watcher.on('delete', (kv: IKeyValue) => deletes.push({revision: Number(kv.mod_revision)}))
    watcher.on('put', (kv: IKeyValue) => puts.push(Number(kv.mod_revision)))
    return {deletes, puts, cancel: () => watcher.cancel()}
  }

  describe('50 removals of a service with 2 dependents', function () {
    let project: AgentProject
    const agents: RunningAgent[] = []

    before(function () {
      project = createAgentProject('dec', groups(true))
    })

    after(async function () {
      await stopAll(agents)
      project?.cleanup()
    })

    it('every dependent\'s provision reflecting the deregistration finishes before the delete recipe starts', async function () {
      const common = {endpoints: [etcd.endpoint], ttl: 10, wait: '20ms:200ms'}
      // A drain far longer than the test's patience: an ordering kept only by the drain timeout fails.
      const provider = await startAgent(project, {...common, group: 'api', node: 'p-1', address: '10.4.0.1', drain: 30})
      const webs = await Promise.all(['web-1', 'web-2'].map((node) => startAgent(project, {...common, group: 'web', node, drain: 1})))
      agents.push(provider, ...webs)
      await Promise.all(agents.map((a) => waitForBoot(a)))
      const key = '/muster/dec/services/api/p-1'
      const watch = await watchDeletes(key)
      const deleteRuns = (): RecordedRun[] => project.runs('p-1').filter((r) => r.runList === DELETE)
      const ITERATIONS = 50
      const startedAt = Date.now()
      try {
        for (let i = 0; i < ITERATIONS; i++) {
          project.writeNodes(groups(false))
          provider.signal('SIGHUP')
          await waitUntil(`removal ${i + 1}: delete recipe and converge`, async () => {
            const runs = project.runs('p-1')
            const deletes = runs.filter((r) => r.runList === DELETE).length
            const converged = runs.filter((r) => r.reason === 'decommission' && r.runList === '').length
            return deletes === i + 1 && converged === i + 1 && watch.deletes.length === i + 1
          }, {proc: provider.proc, timeoutMs: 10_000, intervalMs: 20})
          project.writeNodes(groups(true))
          provider.signal('SIGHUP')
          await waitUntil(`re-adding ${i + 1}: registered again`, async () => watch.puts.length === i + 1 && (await provider.health()).registered.includes('api'), {proc: provider.proc, timeoutMs: 10_000, intervalMs: 20})
        }
      } finally {
        await watch.cancel()
      }
      const elapsed = Date.now() - startedAt

      const removals = deleteRuns()
      expect(removals).to.have.length(ITERATIONS)
      expect(watch.deletes).to.have.length(ITERATIONS)
      for (let i = 0; i < ITERATIONS; i++) {
        const del = removals[i] as RecordedRun
        const revision = (watch.deletes[i] as Deletion).revision
        expect(del.reason).to.equal('decommission')
        // The delete recipe's own attributes no longer offer api.
        expect(del.attributes.muster.available, `removal ${i + 1}`).to.deep.equal({})
        for (const web of webs) {
          const runs = project.runs(web.node)
          const reflecting = runs.find((r) => r.revision >= revision)
          const context = `removal ${i + 1} (deleted at revision ${revision}, delete recipe started ${new Date(del.start).toISOString()}):\n${describeRuns(runs.filter((r) => r.end > del.start - 2000 && r.start < del.end + 2000))}`
          expect(reflecting, `${web.node} never provisioned past the deregistration; ${context}`).to.not.equal(undefined)
          expect((reflecting as RecordedRun).end, `${web.node} finished after the delete started; ${context}`).to.be.below(del.start)
          expect(servicesIn(reflecting as RecordedRun, 'api'), context).to.deep.equal([])
        }
      }
      const problems = agents.flatMap((a) => overlaps(project.runs(a.node)))
      expect(problems).to.deep.equal([])
      expect(elapsed, 'fifty removals in well under a minute').to.be.below(60_000)
    })
  })

  describe('a dependent that never provisions', function () {
    let project: AgentProject
    const agents: RunningAgent[] = []

    before(function () {
      project = createAgentProject('hang', groups(true))
    })

    after(async function () {
      await stopAll(agents)
      project?.cleanup()
    })

    it('holds the delete recipe back for --drain, and no longer', async function () {
      const common = {endpoints: [etcd.endpoint], ttl: 10, wait: '20ms:200ms', drain: 1}
      const provider = await startAgent(project, {...common, group: 'api', node: 'p-1', drain: 2})
      const ok = await startAgent(project, {...common, group: 'web', node: 'web-ok'})
      const stuck = await startAgent(project, {...common, group: 'web', node: 'web-stuck'})
      agents.push(provider, ok, stuck)
      await Promise.all(agents.map((a) => waitForBoot(a)))
      // Both dependents have taken p-1 in (it registers after its boot) and are idle.
      for (const web of [ok, stuck]) {
        await waitUntil(`${web.node} to take p-1 in`, async () => {
          const last = project.runs(web.node).at(-1)
          const h = await web.health()
          return last !== undefined && servicesIn(last, 'api').includes('p-1') && !h.queue.running && !h.queue.provisionPending
        }, {proc: web.proc, timeoutMs: 10_000, intervalMs: 50})
      }
      // From now on every run of web-stuck hangs: its node stays live and never lets go.
      writeFileSync(join(project.recordDir, 'web-stuck.hang'), '')
      const watch = await watchDeletes('/muster/hang/services/api/p-1')
      project.writeNodes(groups(false))
      const signalled = Date.now()
      provider.signal('SIGHUP')
      await waitUntil('the delete recipe', async () => project.runs('p-1').some((r) => r.runList === DELETE), {proc: provider.proc, timeoutMs: 10_000, intervalMs: 20})
      await watch.cancel()
      const del = project.runs('p-1').find((r) => r.runList === DELETE) as RecordedRun
      expect(del.start - signalled, 'the delete waited out --drain 2').to.be.at.least(2000)
      expect(del.start - signalled, 'and not much longer').to.be.below(2000 + 3000)
      const revision = (watch.deletes[0] as Deletion).revision
      const reflecting = project.runs('web-ok').find((r) => r.revision >= revision)
      expect(reflecting?.end, describeRuns(project.runs('web-ok'))).to.be.below(del.start)
      expect(project.runs('web-stuck').filter((r) => r.start >= signalled), 'web-stuck never finished a run since').to.deep.equal([])
      const health = await stuck.health()
      expect(health.queue.running, 'web-stuck is still in its hung run').to.equal(true)
    })
  })
})
