// Human tables for service:ls and node:ls. Registry values were written by nodes, so control
// characters are neutralised before they reach a terminal (JSON output keeps them as data).
import type {NodeRow, ServiceRow} from '../registry/read.js'
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
