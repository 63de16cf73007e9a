// Health-gated services, with agents as processes against a real etcd and a real HTTP service: a
// service with an HTTP health check is registered only once its check has passed `rise` times,
// withdrawn after `fall` failures (the node stays registered), and registered again when it
// recovers; its dependents see each change. A command check gates the same way.
import {expect} from 'chai'
import {Etcd3} from 'etcd3'
import {rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'

import {type AgentProject, createAgentProject, MACHINE, readPrefix, type RunningAgent, servicesIn, startAgent, stopAll, waitForAgent} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {requireTool} from '../support/integration.js'
import {freePort, sleep, waitUntil} from '../support/process.js'

interface ChecksHealth {
  registered: string[]
  checks: Record<string, {healthy: boolean; passes: number; failures: number; lastError: string | null}>
}

describe('agent: health-gated services (real etcd, HTTP service, agent processes)', function () {
  this.timeout(90_000)
  let etcd: EtcdServer
  let client: Etcd3
  let project: AgentProject
  let server: Server
  let healthy = false
  let api: RunningAgent
  let web: RunningAgent
  let flag: string
  const agents: RunningAgent[] = []
  const TIMING = ['--health', 'inter=200ms,timeout=150ms,rise=2,fall=2']

  const keys = async (): Promise<string[]> => [...(await readPrefix(client, '/muster/gated/services/')).keys()].sort()
  const checks = async (agent: RunningAgent): Promise<ChecksHealth> => (await agent.health()) as unknown as ChecksHealth

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
    const port = await freePort()
    server = createServer((req, res) => {
      res.writeHead(req.url === '/health' && !healthy ? 503 : 200, {connection: 'close'})
      res.end('api')
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.2', resolve))
    project = createAgentProject('gated', {
      __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port, health_check: '/health'}, jobs: {health_check: 'test -f "$FLAG"'}}},
      api: {run_list: ['recipe[shop-service::api]']},
      worker: {run_list: ['recipe[ops-service::jobs]']},
      web: {depends_on: ['api'], run_list: ['recipe[web]']},
    })
    flag = join(project.dir, 'jobs-ok')
    web = await startAgent(project, {group: 'web', node: 'web-1', endpoints: [etcd.endpoint], wait: '100ms:500ms'})
    api = await startAgent(project, {group: 'api', node: 'api-1', address: '127.0.0.2', endpoints: [etcd.endpoint], extraArgs: TIMING})
    agents.push(web, api)
    await Promise.all(agents.map((a) => waitForAgent(a)))
  })

  after(async function () {
    await stopAll(agents)
    client?.close()
    server?.closeAllConnections()
    await new Promise((resolve) => server?.close(resolve))
    await etcd?.stop()
    project?.cleanup()
  })

  it('does not register a service whose check fails, and says why in /health', async function () {
    await waitUntil('api-1 booted and checked a few times', async () => {
      const h = await checks(api)
      return (h.checks.api?.failures ?? 0) >= 3 && project.runs('api-1').length > 0
    }, {proc: api.proc, timeoutMs: 15_000})
    const h = await checks(api)
    expect(h.checks.api).to.include({healthy: false, lastError: 'GET /health answered 503'})
    expect(h.registered).to.deep.equal([])
    expect(await keys()).to.deep.equal([])
    expect([...(await readPrefix(client, '/muster/gated/nodes/')).keys()]).to.include('/muster/gated/nodes/api-1')
  })

  it('registers it once the check has risen, and its dependents see it', async function () {
    healthy = true
    await waitUntil('api registered', async () => (await keys()).includes('/muster/gated/services/api/api-1'), {proc: api.proc, timeoutMs: 15_000})
    expect((await checks(api)).checks.api).to.include({healthy: true, lastError: null})
    await waitUntil('web re-provisioned with api-1', async () => project.runs('web-1').some((r) => r.reason === 'dependency' && servicesIn(r, 'api').includes('api-1')), {proc: web.proc, timeoutMs: 15_000})
  })

  it('withdraws it after `fall` failures, keeps the node, and registers it again when it recovers', async function () {
    const since = Date.now()
    healthy = false
    await waitUntil('api withdrawn', async () => !(await keys()).includes('/muster/gated/services/api/api-1'), {proc: api.proc, timeoutMs: 15_000})
    expect([...(await readPrefix(client, '/muster/gated/nodes/')).keys()]).to.include('/muster/gated/nodes/api-1')
    await waitUntil('web re-provisioned without api-1', async () => project.runs('web-1').some((r) => r.start >= since && r.reason === 'dependency' && servicesIn(r, 'api').length === 0), {proc: web.proc, timeoutMs: 15_000})
    healthy = true
    await waitUntil('api back', async () => (await keys()).includes('/muster/gated/services/api/api-1'), {proc: api.proc, timeoutMs: 15_000})
  })

  it('gates on a command check too (exit 0 passes)', async function () {
    const worker = await startAgent(project, {group: 'worker', node: 'worker-1', endpoints: [etcd.endpoint], extraArgs: TIMING, env: {FLAG: flag}})
    agents.push(worker)
    await waitForAgent(worker)
    await sleep(1000)
    expect(await keys()).not.to.include('/muster/gated/services/jobs/worker-1')
    expect((await checks(worker)).checks.jobs?.lastError).to.equal('the check command exited 1')
    writeFileSync(flag, 'ok')
    await waitUntil('jobs registered', async () => (await keys()).includes('/muster/gated/services/jobs/worker-1'), {proc: worker.proc, timeoutMs: 15_000})
    rmSync(flag)
    await waitUntil('jobs withdrawn', async () => !(await keys()).includes('/muster/gated/services/jobs/worker-1'), {proc: worker.proc, timeoutMs: 15_000})
  })
})
