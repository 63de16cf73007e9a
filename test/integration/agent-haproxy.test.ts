// haproxy fed by the registry, end to end: a live haproxy (master-worker), real HTTP backends, and
// agents as processes against a real etcd. Under a steady request load, providers of a service
// come (scale-up) and go (graceful scale-down: deregister, drain, stop) with no failed request and
// no reload: the agent changes servers through haproxy's runtime API. A template that fails
// `haproxy -c` is never installed, and says so in /health.
import {expect} from 'chai'
import {readFileSync, writeFileSync} from 'node:fs'
import {createServer, get, type Server} from 'node:http'
import {join} from 'node:path'

import {type AgentProject, createAgentProject, MACHINE, type RunningAgent, startAgent, stopAll, waitForBoot} from '../support/agent.js'
import {type EtcdServer, startEtcd} from '../support/etcd.js'
import {masterCommand} from '../support/haproxy.js'
import {findTool, requireTool} from '../support/integration.js'
import {freePort, type ManagedProcess, sleep, startProcess, waitUntil} from '../support/process.js'

interface HaproxyHealth {
  haproxy: {reloads: number; runtimeUpdates: number; checkFailures: number; lastError: string | null; servers: Record<string, number>}
}

/** An HTTP backend on 127.0.0.N:port that names itself, with a /health that answers 200. */
async function backend(address: string, port: number, name: string): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(200, {'content-type': 'text/plain', connection: 'close'})
    res.end(req.url === '/health' ? 'ok' : name)
  })
  await new Promise<void>((resolve, reject) => server.listen(port, address, resolve).once('error', reject))
  return server
}

function request(port: number): Promise<{status: number; body: string}> {
  return new Promise((resolve) => {
    const req = get({host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000}, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString('utf8')
      })
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
    })
    req.on('error', (error) => resolve({status: 0, body: error.message}))
    req.on('timeout', () => req.destroy(new Error('timeout')))
  })
}

/** Requests back to back from a few clients until stopped; every answer is recorded. */
function load(port: number, clients = 3): {stop(): Promise<Array<{status: number; body: string}>>} {
  const results: Array<{status: number; body: string}> = []
  let running = true
  const loops = Array.from({length: clients}, async () => {
    while (running) results.push(await request(port))
  })
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      return results
    },
  }
}

describe('agent: haproxy fed by the registry (live haproxy, HTTP backends, real etcd)', function () {
  this.timeout(120_000)
  let etcd: EtcdServer
  let project: AgentProject
  let haproxy: ManagedProcess
  let web: RunningAgent
  let port: number
  let cfg: string
  let socket: string
  const agents: RunningAgent[] = []
  const servers: Server[] = []

  const health = async (): Promise<HaproxyHealth['haproxy']> => ((await web.health()) as unknown as HaproxyHealth).haproxy
  /** The current workers; the master CLI is briefly away while haproxy re-executes on a reload. */
  const workers = async (): Promise<number[]> => {
    let pids: number[] = []
    await waitUntil('haproxy\'s master CLI', async () => {
      pids = (await masterCommand(socket, 'show proc')).workers
      return pids.length > 0
    }, {timeoutMs: 10_000})
    return pids
  }

  before(async function () {
    requireTool(this, 'etcd', 'scripts/ci/install-etcd.sh')
    requireTool(this, 'haproxy', 'scripts/ci/install-haproxy.sh')
    etcd = await startEtcd()
    port = await freePort()
    project = createAgentProject('proxy', {
      __base__: {...MACHINE, run_list: ['recipe[base]'], services: {api: {port, health_check: '/health'}}},
      api: {run_list: ['recipe[shop-service::api]']},
      web: {depends_on: ['api'], run_list: ['recipe[web]']},
    })
    cfg = join(project.dir, 'haproxy.cfg')
    socket = join(project.dir, 'haproxy-master.sock')
    // haproxy runs first, on a config with nothing in it, as a distribution's package leaves it.
    writeFileSync(cfg, 'global\n    maxconn 100\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n')
    haproxy = startProcess(findTool('haproxy') as string, ['-W', '-db', '-S', socket, '-f', cfg], {cwd: project.dir})
    await waitUntil('haproxy', async () => (await workers()).length > 0, {proc: haproxy, timeoutMs: 15_000})
    web = await startAgent(project, {group: 'web', node: 'web-1', endpoints: [etcd.endpoint], extraArgs: ['--haproxy', cfg, '--haproxy-socket', socket, '--haproxy-bin', findTool('haproxy') as string]})
    agents.push(web)
    await waitForBoot(web)
    await waitUntil('the first render', async () => (await health()).reloads === 1, {proc: web.proc, timeoutMs: 15_000})
  })

  after(async function () {
    await stopAll(agents)
    await haproxy?.stop()
    for (const s of servers) s.closeAllConnections()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
    await etcd?.stop()
    project?.cleanup()
  })

  const startApi = async (n: number): Promise<RunningAgent> => {
    const address = `127.0.0.${n + 1}`
    servers.push(await backend(address, port, `api-${n}`))
    const agent = await startAgent(project, {group: 'api', node: `api-${n}`, address, endpoints: [etcd.endpoint]})
    agents.push(agent)
    await waitForBoot(agent)
    return agent
  }

  it('renders a frontend for the dependency with option httpchk on its health path, and no server yet', async function () {
    const text = readFileSync(cfg, 'utf8')
    expect(text).to.include(`frontend api\n    bind 127.0.0.1:${port}\n    default_backend api`)
    expect(text).to.include('option httpchk GET /health')
    expect(text.match(/^ {4}server s\d+ 127\.0\.0\.1:1 weight 100 check disabled$/gm)).to.have.length(8)
    // The reloaded worker binds the new frontend: bounded wait for it to answer.
    await waitUntil('the frontend answers 503 (no server)', async () => (await request(port)).status === 503, {timeoutMs: 10_000})
  })

  it('scale-up and graceful scale-down under load: no failed request, no reload', async function () {
    const pids = await workers()
    const api1 = await startApi(1)
    await waitUntil('api-1 behind haproxy', async () => (await request(port)).body === 'api-1', {timeoutMs: 15_000})
    const traffic = load(port)
    await sleep(500)
    const api2 = await startApi(2)
    const api3 = await startApi(3)
    await waitUntil('three servers in haproxy', async () => (await health()).servers.api === 3, {proc: web.proc, timeoutMs: 15_000})
    await sleep(1000)
    // Graceful scale-down: the agent deregisters (SIGTERM), the server drains, then it stops.
    for (const [agent, server] of [[api2, servers[1]], [api1, servers[0]]] as const) {
      expect(await agent.stop()).to.equal(0)
      await waitUntil(`${agent.node} out of haproxy`, async () => (await health()).servers.api === (agent === api2 ? 2 : 1), {proc: web.proc, timeoutMs: 15_000})
      await sleep(1000)
      server?.closeAllConnections()
      await new Promise((resolve) => server?.close(resolve))
    }
    await sleep(500)
    const results = await traffic.stop()
    const failed = results.filter((r) => r.status !== 200)
    expect(failed, JSON.stringify(failed.slice(0, 5))).to.deep.equal([])
    expect(results.length, 'a steady load').to.be.greaterThan(100)
    const seen = new Set(results.map((r) => r.body))
    expect([...seen].sort()).to.deep.equal(['api-1', 'api-2', 'api-3'])
    expect(results.at(-1)?.body).to.equal('api-3')
    const h = await health()
    expect(h.reloads, 'servers coming and going never reload').to.equal(1)
    expect(h.runtimeUpdates).to.be.greaterThan(0)
    expect(await workers(), 'the same haproxy worker served it all').to.deep.equal(pids)
    // The file keeps up too, so a restart of haproxy gives the same servers.
    expect(readFileSync(cfg, 'utf8')).to.match(new RegExp(`server s\\d+ 127\\.0\\.0\\.4:${port} weight 100 check\\n`))
    expect(api3.proc.hasExited()).to.equal(false)
  })

  it('a template that fails haproxy -c is never installed; /health says why and the last good config stays', async function () {
    const good = readFileSync(cfg, 'utf8')
    writeFileSync(join(project.dir, 'templates-bad.cfg'), 'global\n    no-such-keyword here\n')
    // Switch the agent to the broken template through the project's templates/haproxy.cfg and a reload.
    const templates = join(project.dir, 'templates')
    await import('node:fs').then((fs) => fs.mkdirSync(templates, {recursive: true}))
    writeFileSync(join(templates, 'haproxy.cfg'), 'global\n    no-such-keyword here\n')
    web.signal('SIGHUP')
    await waitUntil('the check failure in /health', async () => (await health()).checkFailures === 1, {proc: web.proc, timeoutMs: 15_000})
    const h = await health()
    expect(h.lastError).to.match(/failed haproxy -c; the last good one stays installed/).and.to.include('no-such-keyword')
    expect(readFileSync(cfg, 'utf8')).to.equal(good)
    expect((await request(port)).body).to.equal('api-3')
  })
})
