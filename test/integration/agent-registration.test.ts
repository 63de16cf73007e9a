// `muster agent` processes against a real etcd: registration under a lease, expiry after kill -9,
// deregistration on SIGTERM, and bad input that must leave nothing registered.
import {rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type AgentProject, createAgentProject, MACHINE, readPrefix, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {runMuster} from '../support/cli.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {freePort, waitUntil} from '../support/process.js'

const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
  api: {run_list: ['recipe[shop-service::api]']},
  web: {depends_on: ['api'], run_list: ['recipe[web]']},
  nodna: {run_list: ['recipe[web]']},
}

describe('muster agent: registration and expiry (real etcd, agent processes)', function () {
  this.timeout(60_000)
  let etcd: EtcdServer
  let client: Etcd3
  let project: AgentProject
  const agents: RunningAgent[] = []

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject('reg', GROUPS)
  })

  afterEach(async function () {
    await stopAll(agents.splice(0))
  })

  after(async function () {
    client?.close()
    await etcd?.stop()
    project?.cleanup()
  })

  const keysOf = async (node: string): Promise<string[]> =>
    [...(await readPrefix(client, '/muster/reg/')).keys()].filter((k) => k.endsWith(`/${node}`)).sort()

  it('registers the node and its services on one lease; kill -9 removes them within TTL + 1 s', async function () {
    const agent = await startAgent(project, {group: 'api', node: 'api-kill', endpoints: [etcd.endpoint], ttl: 3})
    agents.push(agent)
    await waitForBoot(agent)
    const keys = await readPrefix(client, '/muster/reg/')
    const node = keys.get('/muster/reg/nodes/api-kill')
    const service = keys.get('/muster/reg/services/api/api-kill')
    expect(node, 'node key').to.not.equal(undefined)
    expect(service, 'service key').to.not.equal(undefined)
    expect(node?.lease).to.not.equal('0')
    expect(service?.lease).to.equal(node?.lease)
    expect(JSON.parse(service?.value ?? '{}')).to.include({node: 'api-kill', group: 'api', port: 8080})
    const record = JSON.parse(node?.value ?? '{}') as {services: string[]; provision: {ok: boolean; reason: string}}
    expect(record.services).to.deep.equal(['api'])
    expect(record.provision).to.include({ok: true, reason: 'boot'})
    expect((await agent.health()).registry.leaseId).to.equal(node?.lease)

    agent.signal('SIGKILL')
    const killedAt = Date.now()
    await agent.proc.exited
    // TTL 3 + 1 s, counted from the kill.
    await waitUntil('keys of the killed agent to expire', async () => (await keysOf('api-kill')).length === 0, {timeoutMs: killedAt + 4000 - Date.now(), intervalMs: 100})
  })

  it('SIGTERM removes the keys at once and exits 0', async function () {
    const agent = await startAgent(project, {group: 'api', node: 'api-term', endpoints: [etcd.endpoint], ttl: 10, drain: 1})
    agents.push(agent)
    await waitForBoot(agent)
    expect(await keysOf('api-term')).to.deep.equal(['/muster/reg/nodes/api-term', '/muster/reg/services/api/api-term'])
    const exited = agent.proc.exited
    agent.signal('SIGTERM')
    // Far less than the TTL of 10 s: the lease is revoked, not left to expire.
    await waitUntil('keys of the stopped agent to go', async () => (await keysOf('api-term')).length === 0, {timeoutMs: 1000, intervalMs: 50})
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running after 8 s'), 8000))])
    expect(code, agent.proc.output()).to.equal(0)
  })

  describe('bad input: a clear one-line error, no stack trace, nothing registered', function () {
    let closedPort: number
    before(async function () {
      closedPort = await freePort()
      writeFileSync(join(project.dir, 'bad-config.json'), '{"group": "api",\n  "ttl": 5,,\n}\n')
    })

    const run = (name: string, args: string[], overrides: Record<string, string> = {}): {code: number; stderr: string} => {
      const flags: Record<string, string> = {
        '--group': 'api',
        '--nodes': project.nodesFile,
        '--node': `bad-${name}`,
        '--address': '10.0.0.9',
        '--etcd': etcd.endpoint,
        '--project': `bad-${name}`,
        '--provision': project.recorder,
        '--state-dir': join(project.dir, 'state', `bad-${name}`),
        '--ttl': '5',
        '--drain': '1',
        ...overrides,
      }
      const argv = ['agent', ...Object.entries(flags).flatMap(([k, v]) => (v === '' ? [] : [k, v])), ...args]
      const result = runMuster(argv, {cwd: project.dir, timeoutMs: 20_000})
      return {code: result.code, stderr: result.stderr}
    }

    const cases: Array<{name: string; overrides?: Record<string, string>; args?: string[]; names: RegExp}> = [
      {name: 'unknown-group', overrides: {'--group': 'nope'}, names: /nope/},
      {name: 'missing-dna', overrides: {'--group': 'nodna'}, names: /dna/},
      {name: 'unreachable-etcd', overrides: {}, names: /127\.0\.0\.1:\d+/},
      {name: 'no-provision-program', overrides: {'--provision': '/nonexistent/provision --now'}, names: /\/nonexistent\/provision/},
      {name: 'bad-wait', overrides: {'--wait': '5s:1s'}, names: /--wait/},
      {name: 'bad-wait-syntax', overrides: {'--wait': 'soon'}, names: /--wait.*soon/},
      {name: 'bad-config-json', overrides: {'--group': ''}, args: ['--config', 'bad-config.json'], names: /bad-config\.json/},
    ]

    for (const c of cases) {
      it(c.name, async function () {
        const overrides = {...c.overrides}
        if (c.name === 'unreachable-etcd') overrides['--etcd'] = `http://127.0.0.1:${closedPort}`
        if (c.name === 'missing-dna') {
          // The group exists and validates; only its dna file is missing.
          rmSync(join(project.dir, 'dna', 'asg', 'nodna.json'), {force: true})
        }
        const started = Date.now()
        const result = run(c.name, c.args ?? [], overrides)
        expect(result.code, result.stderr).to.not.equal(0)
        expect(Date.now() - started, 'a dead registry is an error within seconds, not a hang').to.be.below(15_000)
        expect(result.stderr, 'no stack trace').to.not.match(/^\s+at /m)
        const first = result.stderr.split('\n').find((l) => l.trim() !== '') ?? ''
        expect(first, result.stderr).to.match(c.names)
        expect(first.length, 'one line, not a dump').to.be.below(400)
        const registered = await readPrefix(client, `/muster/bad-${c.name}/`)
        expect([...registered.keys()], 'nothing registered').to.deep.equal([])
      })
    }
  })
})
