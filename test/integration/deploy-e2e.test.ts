// The paper's workflow end to end, through the real CLI and real agents: "add the recipe to
// 12_04-bee in nodes.json, roles:update, commit, then notify nodes to redeploy". Six agent
// processes of one group against a real etcd; releases in moto's S3; `muster role:update` then
// `muster instance:deploy GROUP -n 2 --yes`. Every node provisions once more, with
// MUSTER_REASON=deploy and the new run list, never more than two at once; the CLI exits 0 with one
// summary row per node. Then a node whose provision fails with --max-errors 0: the CLI reports it
// with its log lines and exits 1, and no node starts after the failure.
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {type AgentProject, createAgentProject, describeRuns, MACHINE, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {createBucket, startMuster} from '../support/deploy.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {type MotoServer, startMoto} from '../support/moto.js'
import {maxConcurrent} from '../support/release.js'

const BUCKET = 'muster-releases'
const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]']},
  '12_04-bee': {autoscale: {timeout: 60, node_min: 6, node_max: 6}, run_list: ['recipe[bee]']},
}

describe('the paper\'s deploy workflow: edit, role:update, instance:deploy (real etcd, moto S3, agent and CLI processes)', function () {
  this.timeout(240_000)
  let etcd: EtcdServer
  let moto: MotoServer
  let project: AgentProject
  const agents: RunningAgent[] = []
  const nodes = Array.from({length: 6}, (_, i) => `bee-${i}`)

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'moto_server', 'scripts/ci/install-moto.sh')
    this.timeout(120_000)
    ;[etcd, moto] = await Promise.all([startEtcd(), startMoto({sourceImages: []})])
    await createBucket(moto, BUCKET)
    project = createAgentProject('paper', GROUPS)
    mkdirSync(join(project.dir, 'cookbooks', 'fail2ban', 'recipes'), {recursive: true})
    writeFileSync(join(project.dir, 'cookbooks', 'fail2ban', 'recipes', 'default.rb'), 'package "fail2ban"\n')
  })

  after(async function () {
    await stopAll(agents)
    project?.cleanup()
    await Promise.all([etcd?.stop(), moto?.stop()])
  })

  it('every node provisions the new run list, at most 2 at once; exit 0 and one summary row per node', async function () {
    for (const node of nodes) {
      agents.push(await startAgent(project, {group: '12_04-bee', node, endpoints: [etcd.endpoint], ttl: 5, wait: '50ms:500ms', drain: 1, env: {...moto.env, RECORD_SLEEP: '0.3', MUSTER_RELEASE_BUCKET: BUCKET}}))
    }
    await Promise.all(agents.map((a) => waitForBoot(a, 60_000)))

    // The paper: add the recipe to the group in the nodes file, then roles:update.
    project.writeNodes({...GROUPS, '12_04-bee': {...GROUPS['12_04-bee'], run_list: ['recipe[bee]', 'recipe[fail2ban]']}})
    const env = {...moto.env, MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: project.project, MUSTER_RELEASE_BUCKET: BUCKET}
    const update = await startMuster(['roles:update', '12_04-bee'], {cwd: project.dir, env}).result
    expect(update.code, update.stderr).to.equal(0)
    expect(existsSync(join(project.dir, 'roles', '12_04-bee.json'))).to.equal(true)
    const role = JSON.parse(readFileSync(join(project.dir, 'roles', '12_04-bee.json'), 'utf8')) as {run_list: string[]}

    const deploy = await startMuster(['instance:deploy', '12_04-bee', '-n', '2', '--yes'], {cwd: project.dir, env, timeoutMs: 180_000}).result
    const runs = nodes.flatMap((node) => project.runs(node)).filter((r) => r.reason === 'deploy')
    expect(deploy.code, `${deploy.stderr}\n${describeRuns(runs)}`).to.equal(0)
    expect(deploy.stderr).to.contain('nodes (6): bee-0, bee-1, bee-2, bee-3, bee-4, bee-5').and.contain('first release of this group')
    const rows = deploy.stdout.trimEnd().split('\n')
    expect(rows[0]).to.match(/^NODE\s+GROUP\s+RESULT/)
    expect(rows.slice(1).map((r) => r.split(/\s{2,}/).slice(0, 3).join('|'))).to.deep.equal(nodes.map((n) => `${n}|12_04-bee|ok`))

    expect(runs.map((r) => r.node).sort(), describeRuns(runs)).to.deep.equal(nodes)
    for (const run of runs) expect(run.runList, run.node).to.equal(role.run_list.join(','))
    expect(role.run_list).to.include('recipe[fail2ban::default]')
    expect(maxConcurrent(runs), describeRuns(runs)).to.be.at.most(2)
    for (const agent of agents) {
      expect(readFileSync(join(agent.stateDir, 'current', 'cookbooks', 'fail2ban', 'recipes', 'default.rb'), 'utf8')).to.contain('fail2ban')
    }
  })

  it('a failing node with --max-errors 0: reported with its log lines, no node starts after it, exit 1', async function () {
    writeFileSync(join(project.recordDir, 'bee-0.fail'), '')
    try {
      const env = {...moto.env, MUSTER_ETCD_ENDPOINTS: etcd.endpoint, MUSTER_PROJECT: project.project, MUSTER_RELEASE_BUCKET: BUCKET}
      const since = Date.now()
      const deploy = await startMuster(['instance:deploy', '12_04-bee', '-n', '1', '--max-errors', '0', '--yes'], {cwd: project.dir, env, timeoutMs: 180_000}).result
      const runs = nodes.flatMap((node) => project.runs(node)).filter((r) => r.reason === 'deploy' && r.start >= since)
      expect(deploy.code, `${deploy.stderr}\n${describeRuns(runs)}`).to.equal(1)
      expect(deploy.stderr).to.contain('role: unchanged since release').and.contain('cookbooks: unchanged')
      expect(deploy.stderr).to.match(/✗ bee-0 \(12_04-bee\) failed: provision failed \(exit 3\):\n(    .*\n)*    FATAL: recipe failed on bee-0/)
      expect(deploy.stderr).to.contain('no further node starts: too many failures (--max-errors)')
      const rows = deploy.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s{2,}/))
      expect(rows.map((r) => r[0])).to.deep.equal(nodes)
      expect(rows.find((r) => r[0] === 'bee-0')?.[2]).to.equal('failed')
      for (const row of rows.filter((r) => r[0] !== 'bee-0')) expect(row[2], row.join(' ')).to.be.oneOf(['ok', 'not started (stopped)'])
      const failed = runs.find((r) => r.node === 'bee-0')
      expect(failed, describeRuns(runs)).to.not.equal(undefined)
      // With one slot and no failure allowed, nothing starts once bee-0's run has ended.
      expect(runs.filter((r) => r.start > (failed?.end ?? 0)).map((r) => r.node), describeRuns(runs)).to.deep.equal([])
    } finally {
      rmSync(join(project.recordDir, 'bee-0.fail'), {force: true})
    }
  })
})
