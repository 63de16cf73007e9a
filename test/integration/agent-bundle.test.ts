// The agent as it ships to a node: dist/muster-agent.mjs, one file, copied alone into an empty
// directory (no node_modules, no package.json) and run by Node against a real etcd; and its
// systemd unit, checked with systemd-analyze verify.
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {Etcd3} from 'etcd3'

import {type AgentProject, createAgentProject, MACHINE, readPrefix, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {repoRoot} from '../support/cli.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {integrationRequired, requireTool} from '../support/integration.js'
import {makeTempDir, removeDir, waitUntil} from '../support/process.js'

const BUNDLE = join(repoRoot, 'dist', 'muster-agent.mjs')
const UNIT = join(repoRoot, 'templates', 'muster-agent.service')

describe('the agent bundle, alone in an empty directory (real etcd)', function () {
  this.timeout(60_000)
  let etcd: EtcdServer
  let client: Etcd3
  let project: AgentProject
  let empty: string
  const agents: RunningAgent[] = []

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    expect(existsSync(BUNDLE), 'npm run build makes dist/muster-agent.mjs').to.equal(true)
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject('bundle', {
      __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
      api: {run_list: ['recipe[shop-service::api]']},
    })
    empty = makeTempDir('bundle')
    copyFileSync(BUNDLE, join(empty, 'muster-agent.mjs'))
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    await etcd?.stop()
    project?.cleanup()
    if (empty) removeDir(empty)
  })

  it('carries nothing of Pulumi or the EC2/Auto Scaling SDKs', function () {
    const meta = JSON.parse(readFileSync(join(repoRoot, 'dist', 'muster-agent.meta.json'), 'utf8')) as {inputs: Record<string, unknown>}
    const inputs = Object.keys(meta.inputs)
    expect(inputs.some((p) => p.includes('node_modules/etcd3/'))).to.equal(true)
    expect(inputs.filter((p) => /@pulumi\/|@aws-sdk\/client-(ec2|auto-scaling)\//.test(p))).to.deep.equal([])
  })

  it('answers --help and --version, and refuses an unknown option with a usage error', function () {
    const run = (args: string[]) => spawnSync(process.execPath, [join(empty, 'muster-agent.mjs'), ...args], {cwd: empty, encoding: 'utf8'})
    const help = run(['--help'])
    expect(help.status).to.equal(0)
    expect(help.stdout).to.include('--etcd-password-file FILE')
    expect(run(['--version']).stdout).to.match(/^muster-agent \d+\.\d+\.\d+ node-20\./)
    const bad = run(['--etcd', 'http://127.0.0.1:1', '--bogus'])
    expect(bad.status).to.equal(64)
    expect(bad.stderr).to.equal("Error: Unknown option '--bogus'\n→ Run with --help for the options.\n")
  })

  it('registers the node and its services, takes a new service on SIGHUP, and deregisters on SIGTERM', async function () {
    expect(readdirSync(empty)).to.deep.equal(['muster-agent.mjs'])
    const agent = await startAgent(project, {group: 'api', node: 'api-1', endpoints: [etcd.endpoint], entry: [join(empty, 'muster-agent.mjs')], cwd: empty})
    agents.push(agent)
    await waitForBoot(agent)
    const keys = await readPrefix(client, '/muster/bundle/')
    expect([...keys.keys()].sort()).to.deep.equal(['/muster/bundle/nodes/api-1', '/muster/bundle/services/api/api-1'])
    expect(project.runs('api-1').map((r) => r.reason)).to.deep.equal(['boot'])
    // SIGHUP re-reads the nodes file: the group now runs a second service, which gets registered.
    project.writeNodes({
      __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}, metrics: {port: 9100}}},
      api: {run_list: ['recipe[shop-service::api]', 'recipe[shop-service::metrics]']},
    })
    agent.signal('SIGHUP')
    await waitUntil('metrics registered after the reload', async () => (await readPrefix(client, '/muster/bundle/services/metrics/')).has('/muster/bundle/services/metrics/api-1'), {proc: agent.proc, timeoutMs: 15_000})
    expect(project.runs('api-1').map((r) => r.reason)).to.deep.equal(['boot', 'config'])
    expect(await agent.stop()).to.equal(0)
    expect((await readPrefix(client, '/muster/bundle/')).size).to.equal(0)
  })
})

describe('templates/muster-agent.service', function () {
  it('passes systemd-analyze verify without a warning', function () {
    // scripts/ci/install-systemd.sh installs it; without it the test is skipped, which CI counts as a failure.
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      if (integrationRequired) throw new Error('systemd-analyze is missing: bash scripts/ci/install-systemd.sh')
      this.skip()
    }
    let unit = readFileSync(UNIT, 'utf8')
    // verify checks that ExecStart's program exists; this machine's node may live elsewhere.
    if (!existsSync('/usr/bin/node')) unit = unit.replace('/usr/bin/node ', `${process.execPath} `)
    const dir = makeTempDir('unit')
    try {
      const path = join(dir, 'muster-agent.service')
      writeFileSync(path, unit)
      const result = spawnSync('systemd-analyze', ['verify', path], {encoding: 'utf8'})
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stderr.trim(), 'no warning (an unknown key is only a warning)').to.equal('')
      // The same check fails on a misspelt key, so a clean run above means something.
      writeFileSync(path, unit.replace('Restart=', 'Restrat='))
      expect(spawnSync('systemd-analyze', ['verify', path], {encoding: 'utf8'}).stderr).to.include("Unknown key 'Restrat'")
    } finally {
      removeDir(dir)
    }
  })

  it('runs as its own user, restarts on failure, and reloads with SIGHUP', function () {
    const unit = readFileSync(UNIT, 'utf8')
    const setting = (key: string): string[] => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1))
    expect(setting('User')).to.deep.equal(['muster'])
    expect(setting('Restart')).to.deep.equal(['on-failure'])
    expect(setting('ExecReload')).to.deep.equal(['/bin/kill -HUP $MAINPID'])
    expect(setting('ExecStart')[0]).to.match(/^\/usr\/bin\/node \/opt\/muster\/muster-agent\.mjs --config \/etc\/muster\/agent\.json/)
  })
})

