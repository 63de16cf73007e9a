// What service:ls and node:ls show: one snapshot of the project's keys, as rows. A registry that
// does not answer is a user error naming the endpoints within a few seconds, never a hang.
import {UserError} from '../errors.js'
import {openEtcd} from './etcd.js'
import {projectPrefix} from './keys.js'
import type {NodeRecord} from './records.js'
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

export async function readRegistry(endpoints: readonly string[], project: string): Promise<RegistryRead> {
  const store = openEtcd({endpoints, callTimeoutMs: 2000})
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${READ_TIMEOUT_MS / 1000} s`)), READ_TIMEOUT_MS)
    })
    const snapshot = await Promise.race([store.snapshot(projectPrefix(project)), timeout])
    const view = new RegistryView(project)
    view.apply(snapshot.events, snapshot.revision)
    return {project, revision: snapshot.revision, services: serviceRows(view), nodes: nodeRows(view)}
  } catch (error) {
    throw new UserError(`cannot reach the registry at ${endpoints.join(', ')}: ${describeFailure(error as Error)}`, {
      hint: 'Check --etcd (or MUSTER_ETCD_ENDPOINTS) and that etcd is running.',
    })
  } finally {
    clearTimeout(timer)
    store.close()
  }
}

/** gRPC's messages run to several sentences of resolver notes; people need the cause. */
export function describeFailure(error: Error): string {
  const message = error.message
  if (/ECONNREFUSED/.test(message)) return 'connection refused'
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'host not found'
  if (/DEADLINE_EXCEEDED|no answer within/i.test(message)) return 'no answer in time'
  return (message.split('\n')[0] ?? message).replace(/\s*Resolution note:.*$/, '')
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
