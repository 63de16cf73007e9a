// The agent's two endpoints: GET /health (JSON for people and load balancers) and GET /metrics
// (Prometheus text from prom-client). Each agent has its own metrics registry, so several agents in
// one process (the bench) do not collide.
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

import {Counter, Histogram, Registry} from 'prom-client'

import type {RegistryFeed} from '../registry/feed.js'
import type {AgentHealth, AgentMetrics} from './agent.js'
import type {HostPort} from './settings.js'

export interface PromMetrics extends AgentMetrics {
  registry: Registry
}

export function createMetrics(feed: RegistryFeed): PromMetrics {
  const registry = new Registry()
  const provisions = new Counter({name: 'muster_agent_provisions_total', help: 'Provision runs by reason and result.', labelNames: ['reason', 'result'], registers: [registry]})
  const queued = new Counter({name: 'muster_agent_provisions_queued_total', help: 'Provision requests by reason (a burst coalesces into fewer runs).', labelNames: ['reason'], registers: [registry]})
  const duration = new Histogram({
    name: 'muster_agent_provision_duration_seconds',
    help: 'Provision run durations.',
    labelNames: ['reason'],
    buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800],
    registers: [registry],
  })
  // Read from the feed when scraped, so the feed needs no metrics library of its own.
  const fromFeed: Array<[keyof RegistryFeed['stats'], string, string]> = [
    ['reconnects', 'muster_agent_registry_reconnects_total', 'Times the registry connection came back.'],
    ['events', 'muster_agent_registry_watch_events_total', 'Registry watch events received.'],
    ['resyncs', 'muster_agent_registry_resyncs_total', 'Fresh snapshots taken after a cancelled (compacted) watch.'],
    ['rejected', 'muster_agent_registry_rejected_total', 'Registry values ignored as malformed, unleased or naming another node.'],
  ]
  for (const [stat, name, help] of fromFeed) {
    new Counter({name, help, registers: [registry], collect() {
      this.reset()
      this.inc(feed.stats[stat])
    }})
  }
  return {
    registry,
    provision(reason, ok, seconds) {
      provisions.inc({reason, result: ok ? 'ok' : 'failed'})
      duration.observe({reason}, seconds)
    },
    queued(reason) {
      queued.inc({reason})
    },
  }
}

export interface StatusServer {
  address: HostPort
  close(): Promise<void>
}

export async function serveStatus(addr: HostPort, health: () => AgentHealth, metrics: Registry): Promise<StatusServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, {allow: 'GET, HEAD'}).end()
      return
    }
    if (path === '/health') {
      const body = health()
      // 200 even while etcd is away: the node still serves on its last view; the body says so.
      response.writeHead(200, {'content-type': 'application/json'}).end(`${JSON.stringify(body)}\n`)
      return
    }
    if (path === '/metrics') {
      metrics.metrics().then(
        (text) => response.writeHead(200, {'content-type': metrics.contentType}).end(text),
        (error: Error) => response.writeHead(500).end(error.message),
      )
      return
    }
    response.writeHead(404, {'content-type': 'text/plain'}).end('not found: try /health or /metrics\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(addr.port, addr.host, () => resolve())
  })
  const bound = server.address() as AddressInfo
  return {
    address: {host: bound.address, port: bound.port},
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
