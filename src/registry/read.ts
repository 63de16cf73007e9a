// What service:ls and node:ls show: one snapshot of the project's keys, as rows. A registry that
// does not answer is a user error naming the endpoints within a few seconds, never a hang.
import {UserError} from '../errors.js'
import type {RegistryTarget} from './connect-options.js'
import {openEtcd} from './etcd.js'
import {projectPrefix} from './keys.js'
import type {NodeRecord} from './records.js'
import type {RegistrySecurity} from './security.js'
import type {Snapshot} from './store.js'
import {probeTls} from './tls-probe.js'
import {RegistryView} from './view.js'

export interface ServiceRow {
  service: string
  node: string
  group: string
  address: string
  port: number | null
  since: string
}

/** A live node as its agent wrote it. */
export type NodeRow = NodeRecord

export interface RegistryRead {
  project: string
  revision: number
  services: ServiceRow[]
  nodes: NodeRow[]
}

const READ_TIMEOUT_MS = 5000

export async function readRegistry(target: RegistryTarget): Promise<RegistryRead> {
  const {project} = target
  const snapshot = await readProjectKeys(target)
  const view = new RegistryView(project)
  view.apply(snapshot.events, snapshot.revision)
  return {project, revision: snapshot.revision, services: serviceRows(view), nodes: nodeRows(view)}
}

/** Every key under the project at one revision (records, deploys, rollouts, releases), bounded in time. */
export async function readProjectKeys(target: RegistryTarget): Promise<Snapshot> {
  const {endpoints, project, security} = target
  const store = openEtcd({endpoints, callTimeoutMs: 2000, security})
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${READ_TIMEOUT_MS / 1000} s`)), READ_TIMEOUT_MS)
    })
    return await Promise.race([store.snapshot(projectPrefix(project)), timeout])
  } catch (error) {
    throw await explainRegistryFailure(error as Error, endpoints, security)
  } finally {
    clearTimeout(timer)
    store.close()
  }
}

/**
 * A failed registry call as a user error: unreachable, a certificate etcd or muster refused, a
 * user etcd does not know, or one it knows without the right to do this.
 */
export function registryFailure(error: Error, endpoints: readonly string[], permissionHint?: string): UserError {
  const where = endpoints.join(', ')
  const message = error.message
  if (/permission denied|user name is empty|not capable/i.test(message)) {
    return new UserError(`the registry at ${where} refused: ${describeFailure(error)}`, {
      hint: permissionHint ?? 'This etcd has authentication on: give --etcd-user (MUSTER_ETCD_USER) a user whose role allows this (muster registry:init creates them), with MUSTER_ETCD_PASSWORD or --etcd-password-file.',
    })
  }
  if (/authentication failed|invalid user ID or password/i.test(message)) {
    return new UserError(`the registry at ${where} refused the user name or password`, {hint: 'Check --etcd-user and the password (MUSTER_ETCD_PASSWORD or --etcd-password-file).'})
  }
  if (/^TLS: |certificate|SSL|handshake|self.signed|unable to verify/i.test(message)) {
    return new UserError(`TLS with the registry at ${where} failed: ${describeFailure(error)}`, {
      hint: 'Check --etcd-ca (the CA that signed etcd\'s certificate) and, when etcd asks for a client certificate, --etcd-cert and --etcd-key.',
    })
  }
  return new UserError(`cannot reach the registry at ${where}: ${describeFailure(error)}`, {hint: 'Check --etcd (or MUSTER_ETCD_ENDPOINTS) and that etcd is running.'})
}

/**
 * registryFailure, and when gRPC only says the endpoint is unavailable over TLS, the reason a
 * handshake of our own gives.
 */
export async function explainRegistryFailure(error: Error, endpoints: readonly string[], security: RegistrySecurity, permissionHint?: string): Promise<UserError> {
  const first = endpoints[0]
  if (security.tls && first?.startsWith('https://') && /UNAVAILABLE|No connection established/i.test(error.message)) {
    const why = await probeTls(first, security.tls)
    if (why !== undefined && why !== 'connection refused') return registryFailure(new Error(`TLS: ${why}`), endpoints, permissionHint)
  }
  return registryFailure(error, endpoints, permissionHint)
}

/** gRPC's messages run to several sentences of resolver notes; people need the cause. */
export function describeFailure(error: Error): string {
  const message = error.message
  if (/ECONNREFUSED/.test(message)) return 'connection refused'
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'host not found'
  if (/DEADLINE_EXCEEDED|no answer within/i.test(message)) return 'no answer in time'
  if (message.startsWith('TLS: ')) return message.slice(5)
  return (message.split('\n')[0] ?? message).replace(/\s*Resolution note:.*$/, '').replace(/^\d+ [A-Z_]+: (etcdserver: )?/, '')
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

function serviceRows(view: RegistryView): ServiceRow[] {
  const rows: ServiceRow[] = []
  for (const service of [...view.services.keys()].sort(byText)) {
    for (const r of view.where(service)) rows.push({service, node: r.node, group: r.group, address: r.address, port: r.port ?? null, since: r.since})
  }
  return rows
}

function nodeRows(view: RegistryView): NodeRow[] {
  return [...view.nodes.values()]
    .sort((a, b) => byText(a.group, b.group) || byText(a.node, b.node))
    .map((n) => ({...n}))
}
