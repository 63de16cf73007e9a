// Helpers for instance:deploy's CLI tests: the CLI as an async process (so a test can act while
// it follows a rollout, and send it SIGINT), a counting HTTP proxy in front of moto (what S3 PUTs
// reached the bucket, and a switch that refuses them), live node records written straight into
// etcd, and a stand-in for the agents' side of the protocol where a test needs one.
import {spawn} from 'node:child_process'
import {createServer, request as httpRequest, type Server} from 'node:http'

import {CreateBucketCommand, S3Client} from '@aws-sdk/client-s3'
import type {Etcd3, Lease} from 'etcd3'

import {binRun, type CliResult} from './cli.js'
import type {MotoServer} from './moto.js'

export interface AsyncCli {
  pid: number
  signal(signal: NodeJS.Signals): void
  result: Promise<CliResult>
  /** stderr so far. */
  stderr(): string
}

export function startMuster(args: readonly string[], options: {cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number}): AsyncCli {
  const child = spawn(process.execPath, [binRun, ...args], {cwd: options.cwd, env: {...process.env, NO_COLOR: '1', ...options.env}, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const timeoutMs = options.timeoutMs ?? 60_000
  const timer = setTimeout(() => {
    stderr += `\n[test harness] killed after ${timeoutMs / 1000} s`
    child.kill('SIGKILL')
  }, timeoutMs)
  const result = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code: code ?? (signal ? 128 : -1), stdout, stderr})
    })
  })
  return {pid: child.pid ?? -1, signal: (s) => child.kill(s), result, stderr: () => stderr}
}

export interface CountingProxy {
  endpoint: string
  /** Every PUT that reached the bucket: its path (/BUCKET/KEY). */
  puts: string[]
  /** Answers PUTs with 500 instead of forwarding them (a bucket that takes no writes). */
  refusePuts: boolean
  stop(): Promise<void>
}

/** An HTTP proxy in front of moto that records the PUTs it forwards. */
export async function startCountingProxy(moto: MotoServer): Promise<CountingProxy> {
  const target = new URL(moto.endpoint)
  const proxy: CountingProxy = {endpoint: '', puts: [], refusePuts: false, stop: async () => undefined}
  const server: Server = createServer((req, res) => {
    if (req.method === 'PUT' && proxy.refusePuts) {
      req.resume()
      res.writeHead(500, {'content-type': 'application/xml'})
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>refused by the test proxy</Message></Error>')
      return
    }
    if (req.method === 'PUT') proxy.puts.push(decodeURIComponent((req.url ?? '').split('?')[0] ?? ''))
    const upstream = httpRequest({host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers}, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
    })
    upstream.on('error', () => {
      res.writeHead(502)
      res.end()
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  proxy.endpoint = `http://127.0.0.1:${address.port}`
  proxy.stop = () => new Promise<void>((resolve) => server.close(() => resolve()))
  return proxy
}

export async function createBucket(moto: MotoServer, name: string): Promise<void> {
  const s3 = new S3Client({endpoint: moto.endpoint, region: moto.region, forcePathStyle: true, credentials: {accessKeyId: 'testing', secretAccessKey: 'testing'}})
  try {
    await s3.send(new CreateBucketCommand({Bucket: name}))
  } finally {
    s3.destroy()
  }
}

/** A node record as an agent writes it, on `lease`: a live node of `group`. */
export async function putLiveNode(client: Etcd3, lease: Lease, project: string, node: string, group: string): Promise<void> {
  const record = {
    node,
    group,
    address: '10.0.0.9',
    services: [],
    dependsOn: [],
    provision: {state: 'idle', ok: true, reason: 'boot', startedAt: null, finishedAt: null, revision: 1, message: null},
    since: new Date().toISOString(),
  }
  await lease.put(`/muster/${project}/nodes/${node}`).value(JSON.stringify(record)).exec()
}

export function nodeStatus(node: string, group: string, state: 'waiting' | 'running' | 'ok' | 'failed', extra: {message?: string; lease?: string | null} = {}): string {
  const now = new Date().toISOString()
  return JSON.stringify({node, group, state, startedAt: state === 'waiting' ? null : now, finishedAt: state === 'ok' || state === 'failed' ? now : null, message: extra.message ?? null, lease: extra.lease ?? null})
}

/**
 * The agents' side of a deploy, played by the test (the CLI's tests must not depend on the agent):
 * once a request appears, each targeted node reports ok, or failed with `failures[node]` as its
 * message, one at a time, or not at all for nodes in `silent`.
 */
export function playAgents(client: Etcd3, project: string, options: {failures?: Record<string, string>; silent?: readonly string[]} = {}): {stop(): void; requests: string[]} {
  const done = new Set<string>()
  const requests: string[] = []
  let stopped = false
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const kvs = (await client.getAll().prefix(`/muster/${project}/deploys/`).exec()).kvs
      for (const kv of kvs) {
        const key = kv.key.toString()
        const match = /deploys\/([^/]+)$/.exec(key)
        if (!match || done.has(key)) continue
        done.add(key)
        const id = match[1] as string
        requests.push(id)
        const rollout = `/muster/${project}/rollout/${id}`
        const request = JSON.parse(kv.value.toString()) as {targets: Record<string, string[]>}
        for (const [group, nodes] of Object.entries(request.targets)) {
          for (const node of nodes) {
            if (options.silent?.includes(node)) continue
            const stopKey = `${rollout}/stop`
            if ((await client.get(stopKey).string()) !== null) continue
            const failure = options.failures?.[node]
            await client.put(`${rollout}/nodes/${node}`).value(nodeStatus(node, group, failure === undefined ? 'ok' : 'failed', {message: failure})).exec()
            // As agents do (mayTakeSlot), after a failure the next node waits for the verdict: the
            // follower stops the rollout once failures pass --max-errors.
            for (let i = 0; failure !== undefined && i < 50 && (await client.get(stopKey).string()) === null; i++) await new Promise((r) => setTimeout(r, 100))
            await new Promise((r) => setTimeout(r, 100))
          }
        }
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  void loop().catch(() => undefined)
  return {stop: () => (stopped = true), requests}
}
