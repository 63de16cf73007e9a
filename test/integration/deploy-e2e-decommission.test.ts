// The paper's workflow end to end when the edit drops a service (deploy-e2e.test.ts covers adding a
// recipe), both halves real: `muster agent` processes on a real etcd, the release bucket in moto's
// S3, and the CLI as a process. Drop api from a group's run list and add fail2ban, `role:update`,
// `instance:deploy GROUP -n 2 --yes`: on each node api is deregistered before its delete recipe
// runs, then the new run list converges (at most 2 at once); the CLI exits 0 with one row per node.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3, type IKeyValue} from 'etcd3'

import {type AgentProject, createAgentProject, describeRuns, type Groups, MACHINE, type RecordedRun, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {runMuster} from '../support/cli.js'
import {startMuster} from '../support/deploy.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {createBucket, maxConcurrent} from '../support/release.js'

const BUCKET = 'muster-e2e-releases'
const DELETE = 'recipe[shop-service::delete-api]'

function groups(webRunList: string[]): Groups {
  return {
    __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
    web: {autoscale: {timeout: 60, node_min: 1, node_max: 3}, run_list: webRunList},
    // Another group still runs api, so the nodes file stays valid once web drops it.
    'api-spare': {run_list: ['recipe[shop-service::api]']},
  }
}

describe('the paper\'s workflow end to end, a service dropped: role:update, instance:deploy, agents decommission and converge (real etcd, moto S3, processes)', function () {
  this.timeout(240_000)
  let etcd: EtcdServer
  let moto: MotoServer
  let client: Etcd3
  let project: AgentProject
  const agents: RunningAgent[] = []

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    this.timeout(120_000)
    ;[etcd, moto] = await Promise.all([startEtcd(), startMoto({sourceImages: []})])
    client = new Etcd3({hosts: etcd.endpoint})
    await createBucket(moto, BUCKET)
    project = createAgentProject('e2edec', groups(['recipe[shop-service::api]', 'recipe[app]']))
    for (const [cookbook, recipe] of [['app', 'default'], ['fail2ban', 'default'], ['shop-service', 'api'], ['shop-service', 'delete-api']] as const) {
      mkdirSync(join(project.dir, 'cookbooks', cookbook, 'recipes'), {recursive: true})
      writeFileSync(join(project.dir, 'cookbooks', cookbook, 'recipes', `${recipe}.rb`), `log "${cookbook}::${recipe}"\n`)
    }
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    project?.cleanup()
    await Promise.all([etcd?.stop(), moto?.stop()])
  })

  it('every node provisions the new run list (2 at once at most), the CLI exits 0, and api is deregistered before its delete recipe', async function () {
    const env = {...moto.env, MUSTER_RELEASE_BUCKET: BUCKET}
    const nodes = ['web-1', 'web-2', 'web-3']
    for (const node of nodes) agents.push(await startAgent(project, {group: 'web', node, endpoints: [etcd.endpoint], ttl: 5, wait: '50ms:500ms', drain: 1, env: {...env, RECORD_SLEEP: '0.3'}}))
    await Promise.all(agents.map((a) => waitForBoot(a, 30_000)))
    const deletes = new Map<string, number>()
    const watcher = await client.watch().prefix('/muster/e2edec/services/api/').create()
    watcher.on('delete', (kv: IKeyValue) => deletes.set(kv.key.toString().split('/').at(-1) as string, Number(kv.mod_revision)))
    try {
      // The paper: add the recipe to the group in the nodes file, roles:update, then deploy.
      project.writeNodes(groups(['recipe[app]', 'recipe[fail2ban]']))
      const roles = runMuster(['role:update', 'web'], {cwd: project.dir, env: {...process.env, ...env}})
      expect(roles.code, roles.stderr).to.equal(0)
      const role = JSON.parse(readFileSync(join(project.dir, 'roles', 'web.json'), 'utf8')) as {run_list: string[]}
      expect(role.run_list.some((r) => r.startsWith('recipe[fail2ban'))).to.equal(true)
      expect(role.run_list.some((r) => r.includes('shop-service'))).to.equal(false)
      const deploy = await startMuster(['instance:deploy', 'web', '-n', '2', '--yes'], {cwd: project.dir, env: {...process.env, ...env, MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: 'e2edec'}, timeoutMs: 120_000}).result
      expect(deploy.code, deploy.stderr).to.equal(0)
      const rows = deploy.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s+/).slice(0, 3).join(' '))
      expect(rows).to.deep.equal(nodes.map((n) => `${n} web ok`))

      const runs = nodes.flatMap((n) => project.runs(n))
      const deployRuns = runs.filter((r) => r.reason === 'deploy')
      expect(deployRuns.map((r) => r.node).sort(), describeRuns(runs)).to.deep.equal(nodes)
      for (const run of deployRuns) expect(run.runList).to.equal(role.run_list.join(','))
      expect(maxConcurrent(deployRuns), describeRuns(deployRuns)).to.be.at.most(2)
      for (const node of nodes) {
        const mine = project.runs(node)
        const del = mine.find((r) => r.runList === DELETE) as RecordedRun
        expect(del, describeRuns(mine)).to.not.equal(undefined)
        expect(deletes.get(node), node).to.be.a('number')
        // The delete recipe's attributes reflect a registry at or past the node's deregistration.
        expect(del.revision).to.be.at.least(deletes.get(node) as number)
        expect(del.start).to.be.at.most((mine.find((r) => r.reason === 'deploy') as RecordedRun).start)
      }
      for (const a of agents) expect((await a.health()).registered).to.deep.equal([])
    } finally {
      await watcher.cancel()
    }
  })
})
