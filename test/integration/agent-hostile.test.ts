// What an operator's mistakes and a compromised node can do to agents through the registry, against
// a real etcd and agent processes: a second agent with the same node id, a failed start beside a
// live agent, keys deleted or forged by another writer, a registry stuffed past gRPC's message
// limit, and a state dir that cannot be written.
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'
import {Etcd3} from 'etcd3'

import {type AgentProject, createAgentProject, MACHINE, metricValue, readPrefix, type RunningAgent, serviceValue, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {runMuster} from '../support/cli.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {waitUntil} from '../support/process.js'

const GROUPS = {
  __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port: 8080}}},
  api: {run_list: ['recipe[shop-service::api]']},
  web: {depends_on: ['api'], run_list: ['recipe[web]']},
}

describe('muster agent: hostile registry and operator mistakes (real etcd, agent processes)', function () {
  this.timeout(60_000)
  let etcd: EtcdServer
  let client: Etcd3
  let project: AgentProject
  const agents: RunningAgent[] = []
  const P = '/muster/hostile/'

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    project = createAgentProject('hostile', GROUPS)
  })

  afterEach(async function () {
    await stopAll(agents.splice(0))
    await client.delete().prefix(P).exec()
  })

  after(async function () {
    client?.close()
    await etcd?.stop()
    project?.cleanup()
  })

  it('refuses a second agent with the same node id, and leaves the first one\'s keys alone', async function () {
    const first = await startAgent(project, {group: 'api', node: 'twin', endpoints: [etcd.endpoint], ttl: 2})
    agents.push(first)
    await waitForBoot(first)
    const before = await readPrefix(client, P)
    const second = await startAgent(project, {group: 'api', node: 'twin', address: '10.9.9.9', endpoints: [etcd.endpoint], ttl: 2})
    agents.push(second)
    const code = await second.proc.exited
    expect(code).to.equal(1)
    expect(second.proc.output()).to.match(/node twin is already registered by another agent/)
    expect(second.proc.output()).not.to.match(/\n\s+at /)
    const after = await readPrefix(client, P)
    expect(after.get(`${P}nodes/twin`)?.lease).to.equal(before.get(`${P}nodes/twin`)?.lease)
    expect(after.get(`${P}services/api/twin`)).to.deep.equal(before.get(`${P}services/api/twin`))
  })

  it('a failed start (status port taken) deletes nothing of a live agent of the same node', async function () {
    const live = await startAgent(project, {group: 'api', node: 'busy', endpoints: [etcd.endpoint], ttl: 3})
    agents.push(live)
    await waitForBoot(live)
    const before = await readPrefix(client, P)
    const result = runMuster(['agent', '--group', 'api', '--nodes', project.nodesFile, '--node', 'busy', '--address', '10.1.1.1', '--etcd', etcd.endpoint, '--project', 'hostile', '--provision', project.recorder, '--status-addr', `127.0.0.1:${live.statusPort}`, '--state-dir', join(project.dir, 'state', 'busy-2')], {cwd: project.dir})
    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/--status-addr 127\.0\.0\.1:\d+ is already in use/)
    const after = await readPrefix(client, P)
    expect([...after.keys()].sort()).to.deep.equal([...before.keys()].sort())
  })

  it('writes its keys again when another writer deletes or detaches them', async function () {
    const agent = await startAgent(project, {group: 'api', node: 'victim', endpoints: [etcd.endpoint], ttl: 5})
    agents.push(agent)
    await waitForBoot(agent)
    await client.delete().key(`${P}services/api/victim`).exec()
    await client.delete().key(`${P}nodes/victim`).exec()
    await waitUntil('victim registered again', async () => (await readPrefix(client, P)).has(`${P}services/api/victim`) && (await readPrefix(client, P)).has(`${P}nodes/victim`), {timeoutMs: 5000})
    // A put without a lease detaches the key from the agent's lease: the agent takes it back.
    await client.put(`${P}services/api/victim`).value(serviceValue('victim', 'api', '6.6.6.6', 80)).exec()
    await waitUntil('victim re-attached to its lease', async () => {
      const record = (await readPrefix(client, P)).get(`${P}services/api/victim`)
      return record !== undefined && record.lease !== '0' && JSON.parse(record.value).address !== '6.6.6.6'
    }, {timeoutMs: 5000})
  })

  it('ignores forged records (no lease, bad address) and still starts past a 4 MiB registry', async function () {
    const web = await startAgent(project, {group: 'web', node: 'web-h', endpoints: [etcd.endpoint], wait: '0s:0s'})
    agents.push(web)
    await waitForBoot(web)
    const big = 'x'.repeat(1_400_000)
    for (let i = 0; i < 4; i++) await client.put(`${P}junk/${i}`).value(big).exec()
    await client.put(`${P}services/api/ghost`).value(serviceValue('ghost', 'api', '10.6.6.6', 8080)).exec()
    const lease = client.lease(30)
    await lease.put(`${P}services/api/evil`).value(JSON.stringify({node: 'evil', group: 'api', address: '10.0.0.1\n  server pwn 6.6.6.6:80', port: 80, since: new Date().toISOString()}))
    await lease.put(`${P}services/api/real`).value(serviceValue('real', 'api', '10.7.7.7', 8080))
    await waitUntil('web-h saw the real provider', async () => project.runs('web-h').some((r) => JSON.stringify(r.attributes).includes('10.7.7.7')), {proc: web.proc, timeoutMs: 10_000})
    const last = project.runs('web-h').at(-1)
    const apis = (last?.attributes.muster.services.api ?? []).map((s) => s.node)
    expect(apis).to.deep.equal(['real'])
    expect(metricValue(await web.metrics(), 'muster_agent_registry_rejected_total')).to.be.at.least(2)
    // The CLI reads the same registry in pages and shows only the real provider.
    const listed = runMuster(['service:ls', 'api', '--json', '--etcd', etcd.endpoint, '--project', 'hostile'], {cwd: project.dir})
    expect(listed.code, listed.stderr).to.equal(0)
    expect((JSON.parse(listed.stdout) as Array<{node: string}>).map((r) => r.node)).to.deep.equal(['real'])
    // A new agent starts with a snapshot larger than gRPC's default 4 MiB message.
    const late = await startAgent(project, {group: 'web', node: 'web-late', endpoints: [etcd.endpoint]})
    agents.push(late)
    await waitForBoot(late)
    await lease.revoke()
  })

  it('survives a state dir it cannot write: the run fails, is reported and retried, and the agent lives', async function () {
    const web = await startAgent(project, {group: 'web', node: 'web-ro', endpoints: [etcd.endpoint], wait: '0s:0s'})
    agents.push(web)
    await waitForBoot(web)
    const attributes = join(web.stateDir, 'attributes.json')
    rmSync(attributes)
    mkdirSync(join(attributes, 'blocker'), {recursive: true})
    const lease = client.lease(30)
    await lease.put(`${P}services/api/p1`).value(serviceValue('p1', 'api', '10.5.5.5', 8080))
    await waitUntil('failure reported', async () => (await web.health()).provision.ok === false, {proc: web.proc, timeoutMs: 10_000})
    const node = JSON.parse((await readPrefix(client, P)).get(`${P}nodes/web-ro`)?.value ?? '{}') as {provision: {state: string; message: string}}
    expect(node.provision.state).to.equal('failed')
    expect(node.provision.message).to.match(/cannot write .*attributes\.json: EISDIR/)
    rmSync(attributes, {recursive: true})
    await waitUntil('retried and recovered', async () => (await web.health()).provision.ok === true, {proc: web.proc, timeoutMs: 15_000})
    expect(web.proc.hasExited()).to.equal(false)
    await lease.revoke()
  })

  it('registers a service added by a config change once a retried converge succeeds', async function () {
    const groups = {...GROUPS, grow: {run_list: ['recipe[web]']}}
    const grow = createAgentProject('hostile', groups)
    try {
      const agent = await startAgent(grow, {group: 'grow', node: 'grow-1', endpoints: [etcd.endpoint]})
      agents.push(agent)
      await waitForBoot(agent)
      writeFileSync(join(grow.recordDir, 'grow-1.fail'), '')
      grow.writeNodes({...groups, grow: {run_list: ['recipe[web]', 'recipe[shop-service::api]']}})
      agent.signal('SIGHUP')
      await waitUntil('the config run failed', async () => (await agent.health()).provision.ok === false, {proc: agent.proc, timeoutMs: 10_000})
      expect((await agent.health()).registered).to.deep.equal([])
      rmSync(join(grow.recordDir, 'grow-1.fail'))
      await waitUntil('api registered after the retry', async () => (await readPrefix(client, P)).has(`${P}services/api/grow-1`), {proc: agent.proc, timeoutMs: 15_000})
      expect(grow.runs('grow-1').at(-1)?.reason).to.equal('config')
    } finally {
      await stopAll(agents.splice(0))
      grow.cleanup()
    }
  })
})
