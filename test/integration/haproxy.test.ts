// Component proof: haproxy starts from a config, answers through it, and reloads; the helpers in
// test/support/haproxy.ts are what a suite of muster's haproxy rendering will drive.
import {expect} from 'chai'
import {createServer, type Server} from 'node:http'

import {checkHaproxyConfig, type HaproxyContext, type HaproxyServer, startHaproxy} from '../support/haproxy.js'
import {requireTool} from '../support/integration.js'

interface Backend {
  name: string
  port: number
}

// Shaped like what muster renders from the registry: one frontend, one backend per role.
function renderConfig(ctx: HaproxyContext, backends: Backend[]): string {
  return [
    'global',
    '  maxconn 256',
    // As in Debian's default config; the harness keeps haproxy in the foreground regardless.
    '  daemon',
    '  stats socket ' + `${ctx.dir}/admin.sock` + ' mode 600 level admin',
    'defaults',
    '  mode http',
    '  option httplog',
    '  timeout connect 2s',
    '  timeout client 10s',
    '  timeout server 10s',
    'frontend web',
    `  bind 127.0.0.1:${ctx.port}`,
    '  default_backend app',
    'backend app',
    '  balance roundrobin',
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check inter 1s`),
    '',
  ].join('\n')
}

function startBackend(name: string): Promise<{server: Server; backend: Backend}> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      res.setHeader('x-backend', name)
      res.end(`hello from ${name} ${req.method} ${req.url}`)
    })
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') return reject(new Error('no port'))
      resolve({server, backend: {name, port: address.port}})
    })
  })
}

function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!server) return resolve()
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

describe('haproxy (component)', function () {
  this.timeout(30_000)
  const servers: Server[] = []
  let haproxy: HaproxyServer | undefined

  before(function () {
    requireTool(this, 'haproxy', 'scripts/ci/install-haproxy.sh')
  })

  afterEach(async function () {
    await haproxy?.stop()
    haproxy = undefined
    await Promise.all(servers.splice(0).map(closeServer))
  })

  it('checks a config: accepts a valid one, rejects a broken one with haproxy\'s error', async function () {
    const config = renderConfig({port: 18080, dir: '/tmp'}, [
      {name: 'web-1', port: 18081},
      {name: 'web-2', port: 18082},
    ])
    const valid = await checkHaproxyConfig(config)
    expect(valid.output).to.match(/Configuration file is valid/)
    expect(valid.ok).to.equal(true)
    const broken = await checkHaproxyConfig(config.replace('  balance roundrobin', '  balance nosuchalgorithm'))
    expect(broken.ok).to.equal(false)
    expect(broken.output).to.match(/parsing \[.*haproxy\.cfg:\d+\] : balance only supports/)
  })

  it('proxies a request to a local HTTP server, and a reload switches backends', async function () {
    const one = await startBackend('web-1')
    const two = await startBackend('web-2')
    servers.push(one.server, two.server)

    haproxy = await startHaproxy((ctx) => renderConfig(ctx, [one.backend]))
    expect(haproxy.port).to.be.greaterThan(1024)
    const response = await fetch(`${haproxy.url}/health?x=1`)
    expect(response.status).to.equal(200)
    expect(response.headers.get('x-backend')).to.equal('web-1')
    expect(await response.text()).to.equal('hello from web-1 GET /health?x=1')

    const workersBefore = await haproxy.workerPids()
    await haproxy.reload((ctx) => renderConfig(ctx, [two.backend]))
    const workersAfter = await haproxy.workerPids()
    expect(workersAfter).to.not.have.members(workersBefore)
    const after = await fetch(`${haproxy.url}/`)
    expect(after.headers.get('x-backend')).to.equal('web-2')
    expect(await after.text()).to.equal('hello from web-2 GET /')
  })
})
