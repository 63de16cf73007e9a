// A real single-member etcd (Debian's etcd-server, 3.4) on free loopback ports with its data dir
// in a temp dir. The ports are chosen before etcd starts because etcd 3.4 insists that its
// advertise URLs match what it listens on, and they are kept across restart() so clients and
// agents under test can reconnect to the same address.
import {readFileSync} from 'node:fs'
import {request} from 'node:https'
import {join} from 'node:path'

import {findTool} from './integration.js'
import type {TlsFiles} from './tls.js'
import {freePorts, makeTempDir, type ManagedProcess, removeDir, startProcess, waitUntil} from './process.js'

export interface EtcdServer {
  /** http://127.0.0.1:CLIENT_PORT: what the etcd3 client takes as `hosts`. */
  endpoint: string
  clientPort: number
  peerPort: number
  dataDir: string
  /** ETCDCTL_API=3 and ETCDCTL_ENDPOINTS for running etcdctl against this server. */
  env: Record<string, string>
  /** Stops the process but keeps ports and data: a down etcd, as agents see an outage. */
  halt(): Promise<void>
  /** Starts it again on the same ports and data dir (after halt()). */
  resume(): Promise<void>
  /** halt() then resume(): keys survive, leases keep their remaining TTL as etcd rules. */
  restart(): Promise<void>
  isRunning(): boolean
  /** The etcd process's pid while it runs (bench/: its CPU time from /proc). */
  pid(): number | undefined
  /** Stops it and removes the temp dir. */
  stop(): Promise<void>
}

export interface StartEtcdOptions {
  /** Serve https:// and require client certificates signed by the files' CA. */
  tls?: TlsFiles
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const etcd = findTool('etcd')
  if (!etcd) throw new Error('etcd not found (install it with: bash scripts/ci/install-etcd.sh)')
  const dir = makeTempDir('etcd')
  const dataDir = join(dir, 'data')
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const tls = options.tls
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const args = [
    '--name', 'muster-test',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `muster-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', `muster-test-${clientPort}`,
    '--logger', 'zap',
    '--log-level', 'warn',
    ...(tls ? ['--cert-file', tls.serverCert, '--key-file', tls.serverKey, '--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
  ]

  let proc: ManagedProcess | undefined
  const launch = async (): Promise<void> => {
    const started = startProcess(etcd, args, {
      cwd: dir,
      // ETCD_* variables of the machine would override our flags.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_'))),
    })
    proc = started
    try {
      await waitUntil('etcd', () => (tls ? healthyTls(endpoint, tls) : healthy(endpoint)), {proc: started, timeoutMs: 30_000})
    } catch (error) {
      await started.stop()
      throw error
    }
  }

  try {
    await launch()
  } catch (error) {
    removeDir(dir)
    throw error
  }

  const halt = async (): Promise<void> => {
    await proc?.stop()
    proc = undefined
  }
  const resume = async (): Promise<void> => {
    if (proc && !proc.hasExited()) return
    await launch()
  }

  return {
    endpoint,
    clientPort,
    peerPort,
    dataDir,
    env: {ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: endpoint},
    halt,
    resume,
    async restart(): Promise<void> {
      await halt()
      await resume()
    },
    isRunning: () => proc !== undefined && !proc.hasExited(),
    pid: () => proc?.child.pid,
    async stop(): Promise<void> {
      await halt()
      removeDir(dir)
    },
  }
}

/** etcd answers /health with {"health":"true"} once it has a leader and serves requests. */
async function healthy(endpoint: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/health`, {signal: AbortSignal.timeout(2000)})
  const body = (await response.json()) as {health?: unknown}
  return response.ok && body.health === 'true'
}

/** The same over TLS, with the client certificate etcd requires. */
function healthyTls(endpoint: string, tls: TlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${endpoint}/health`, {ca: readFileSync(tls.ca), cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey), timeout: 2000}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8')
      })
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')))
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}
