// muster status as text: one small table per group (what runs), then the orphan stacks. Values
// that came from the registry were written by nodes, so every cell is neutralised.
import type {DeployResult, GroupStatus, StatusResult, Unknown} from '../actions/status.js'
import {neutralise} from './format.js'
import {formatOrphans} from './orphans.js'

const isUnknown = (value: unknown): value is Unknown => typeof value === 'object' && value !== null && 'unknown' in value

const unknown = (u: Unknown): string => `unknown: ${u.unknown}`

function amiCell(g: GroupStatus): string {
  if (isUnknown(g.images)) return unknown(g.images)
  const {newest, count, keep, legacy} = g.images
  const parts = [newest ? `${newest.id} (newest of ${count}${keep !== null ? `, keeps ${keep}` : ''})` : (g.stackAmi ?? 'none baked')]
  if (newest && g.stackAmi && g.stackAmi !== newest.id) parts.push(`stack's bake: ${g.stackAmi}`)
  if (legacy > 0) parts.push(`${legacy} legacy image${legacy === 1 ? '' : 's'} (muster packer:adopt ${g.group})`)
  return parts.join('; ')
}

function asgCell(g: GroupStatus): string {
  if (isUnknown(g.asgs)) return unknown(g.asgs)
  if (g.asgs.length === 0) return 'none'
  return g.asgs.map((a) => `${a.name}: ${a.desired} desired, ${a.inService} in service${a.managed ? '' : ' (not in the stack)'}`).join('; ')
}

export function deployOutcome(d: DeployResult): string {
  const state = !d.done ? 'running' : d.ok ? 'ok' : d.stopped ? `failed (${d.stopped})` : 'failed'
  const counts = Object.entries(d.counts)
    .filter(([, n]) => n > 0)
    .map(([outcome, n]) => `${n} ${outcome}`)
    .join(', ')
  return `${d.id} ${state}${counts ? `: ${counts}` : ''}`
}

function groupTable(g: GroupStatus, environment: string | undefined): string {
  const rows: Array<[string, string]> = [['AMI', amiCell(g)], ['ASG', asgCell(g)]]
  if (g.stackProblem) rows.unshift(['STACK', unknown({unknown: g.stackProblem})])
  if (isUnknown(g.registry)) {
    rows.push(['NODES', unknown(g.registry)], ['RELEASE', 'unknown'], ['LAST DEPLOY', 'unknown'])
  } else {
    const r = g.registry
    rows.push(['NODES', `${r.registered} registered, ${r.healthy} healthy`], ['RELEASE', r.release ? r.release.slice(0, 12) : 'none'], ['LAST DEPLOY', r.lastDeploy ? deployOutcome(r.lastDeploy) : 'none'])
  }
  const width = Math.max(...rows.map(([k]) => k.length))
  const title = `${g.group} (${environment === undefined ? '' : `${environment}, `}${g.region}${g.stack ? '' : ', no stack yet'})`
  return [neutralise(title), ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${neutralise(v)}`)].join('\n') + '\n'
}

export function formatStatus(result: StatusResult): string {
  const parts = result.groups.map((g) => groupTable(g, result.environment))
  const orphans = formatOrphans(result.orphans, result.nodesFile, result.environment)
  if (orphans) parts.push(orphans)
  if (result.orphansUnknown) parts.push(`Orphan stacks: unknown: ${neutralise(result.orphansUnknown)}\n`)
  if (parts.length === 0) return 'No groups.\n'
  return parts.join('\n')
}
