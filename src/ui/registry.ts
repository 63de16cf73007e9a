// Human tables for service:ls and node:ls. Registry values were written by nodes, so control
// characters are neutralised before they reach a terminal (JSON output keeps them as data).
import type {NodeRow, ServiceRow} from '../registry/read.js'
import type {RegistryInitResult} from '../actions/registry-init.js'
import {formatTable, neutralise} from './format.js'

// formatTable neutralises every cell; only the messages outside a table need it here.
const safe = (text: string): string => neutralise(text)

export function formatServiceRows(rows: readonly ServiceRow[], only: string | undefined): string {
  if (rows.length === 0) return only === undefined ? 'No services registered.\n' : `No node runs ${safe(only)}.\n`
  return formatTable(
    ['SERVICE', 'NODE', 'GROUP', 'ADDRESS', 'PORT', 'SINCE'],
    rows.map((r) => [r.service, r.node, r.group, r.address, r.port === null ? '-' : String(r.port), r.since]),
  )
}

export function formatNodeRows(rows: readonly NodeRow[], only: string | undefined): string {
  if (rows.length === 0) return only === undefined ? 'No live nodes.\n' : `No live nodes in group ${safe(only)}.\n`
  const last = (r: NodeRow): string => {
    const p = r.provision
    if (p.state === 'running') return `running (${p.reason ?? '?'})`
    if (p.ok === null) return 'pending'
    return `${p.ok ? 'ok' : 'failed'} ${p.finishedAt ?? ''} rev ${p.revision}`
  }
  return formatTable(
    ['NODE', 'GROUP', 'ADDRESS', 'SERVICES', 'DEPENDS ON', 'LAST PROVISION'],
    rows.map((r) => [r.node, r.group, r.address, r.services.join(',') || '-', r.dependsOn.join(',') || '-', last(r)]),
  )
}

/** registry:init's steps, one line each, then where the passwords are and what to do with them. */
export function formatAccessSteps(result: RegistryInitResult): string {
  const lines = result.steps.map((s) => `${s.action.padEnd(9)} ${s.subject}${s.detail ? `: ${s.detail}` : ''}`)
  lines.push('', `Agents: --etcd-user ${result.agentUser} with its password file as --etcd-password-file (or etcdUser/etcdPasswordFile in agent.json).`)
  lines.push(`Operators and CI: --etcd-user ${result.operatorUser} with MUSTER_ETCD_PASSWORD.`)
  return `${lines.map((l) => neutralise(l)).join('\n')}\n`
}
