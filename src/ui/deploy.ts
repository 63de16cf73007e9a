// Rendering of instance:deploy, deploy:status and deploy:cancel: the plan shown before the
// question, the live progress line, one line per failure, and the summary table. Pure functions
// plus one small renderer that draws the progress line in place on a terminal and as periodic
// plain lines elsewhere (CI logs must not fill with carriage returns).
import type {DeployPlan} from '../actions/deploy.js'
import type {DeployCancelData, FollowHandlers, FollowUpdate} from '../actions/deploy-follow.js'
import type {DeployProgress, DeployRequest, DeployStop, NodeOutcome} from '../registry/deploys.js'
import {formatTable, neutralise, paint} from './format.js'

/** 75 s → "1:15"; 3725 s → "1:02:05". */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  const ss = String(s).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

const short = (digest: string): string => digest.slice(0, 12)

export function formatDeployPlan(plan: DeployPlan, color: boolean): string {
  const lines: string[] = []
  lines.push(paint(color, 'bold', `Deploy ${plan.id}: ${plan.totalTargets} node${plan.totalTargets === 1 ? '' : 's'} in ${plan.groups.length} group${plan.groups.length === 1 ? '' : 's'}, ${plan.n} at a time`))
  lines.push(`  stops handing out slots after ${plan.maxErrors === 0 ? 'the first failure' : `${plan.maxErrors + 1} failures`} (--max-errors ${plan.maxErrors})`)
  lines.push(`  timeout ${formatDuration(plan.timeout * 1000)} (${plan.timeoutSource})`)
  if (plan.environment !== undefined) lines.push(`  environment ${plan.environment} (registry project ${plan.project})`)
  if (plan.promotion) {
    lines.push(paint(color, 'bold', `  promoting release ${plan.promotion.digest} (built ${plan.promotion.createdAt}): nothing is built or uploaded`))
    lines.push(`  the release is in s3://${plan.bucket}/muster/${plan.releaseProject ?? plan.project}/`)
  } else lines.push(`  releases go to s3://${plan.bucket}/muster/${plan.releaseProject ?? plan.project}/`)
  for (const g of plan.groups) {
    lines.push('')
    lines.push(paint(color, 'bold', `${g.group}`) + `  release ${short(g.release.digest)}${g.unchanged ? ' (the release it has: nodes converge again)' : ''}`)
    lines.push(`  nodes (${g.targets.length}): ${g.targets.join(', ')}`)
    if (g.previous === null) lines.push('  first release of this group')
    else if (g.previousError !== null) lines.push(paint(color, 'yellow', `  last release ${short(g.previous.digest)} could not be read (${g.previousError}); no diff`))
    lines.push(`  cookbooks: ${plan.cookbooks === null ? 'none (the project has no cookbooks/)' : g.previous === null || g.previousError !== null ? `${short(plan.cookbooks.sha256)}` : g.cookbooksChanged ? `changed → ${short(plan.cookbooks.sha256)}` : 'unchanged'}`)
    if (g.roleDiff === '') lines.push(`  role: unchanged since release ${short(g.previous?.digest ?? '')}`)
    // The diff's header separates the file name from its label with a tab: keep it a tab.
    else if (g.roleDiff !== null) lines.push(`  role: changed since release ${short(g.previous?.digest ?? '')}`, ...colorDiff(neutralise(g.roleDiff, '\n\t'), color).split('\n').map((l) => `    ${l}`))
  }
  if (plan.unknownGroups.length > 0) lines.push('', paint(color, 'yellow', `Left out: live nodes of ${plan.unknownGroups.join(', ')} (not in the nodes file).`))
  return `${lines.join('\n')}\n`
}

function colorDiff(diff: string, color: boolean): string {
  if (!color) return diff
  return diff
    .split('\n')
    .map((line) => (line.startsWith('+') && !line.startsWith('+++') ? paint(true, 'green', line) : line.startsWith('-') && !line.startsWith('---') ? paint(true, 'red', line) : line.startsWith('@@') ? paint(true, 'cyan', line) : line))
    .join('\n')
}

/** "ok 3 · failed 1 · running 2 · waiting 0 of 6 · 0:42 elapsed · ETA 0:20" */
export function formatProgressLine(update: Pick<FollowUpdate, 'progress' | 'elapsedMs' | 'etaMs' | 'stop'>, color = false): string {
  const c = update.progress.counts
  const total = update.progress.nodes.length
  const failed = c.failed + c.lost
  const parts = [
    paint(color, 'green', `ok ${c.ok}`),
    failed > 0 ? paint(color, 'red', `failed ${failed}`) : `failed ${failed}`,
    `running ${c.running}`,
    `waiting ${c.waiting} of ${total}`,
  ]
  const notStarted = c['timed-out'] + c.skipped
  if (notStarted > 0) parts.push(paint(color, 'yellow', `not started ${notStarted}`))
  parts.push(`${formatDuration(update.elapsedMs)} elapsed`)
  if (!update.progress.done) parts.push(update.etaMs === undefined ? 'ETA –' : `ETA ${formatDuration(update.etaMs)}`)
  if (update.stop) parts.push(paint(color, 'yellow', `stopped: ${update.stop.reason}`))
  return parts.join(' · ')
}

/** "✗ web-3 (web) failed: provision exited with 3" and the log's last lines, indented. */
export function formatFailure(entry: DeployProgress['nodes'][number], color = false, maxLines = 10): string {
  const message = neutralise(entry.status?.message ?? (entry.outcome === 'lost' ? 'its agent stopped answering mid-run (its lease expired)' : 'no message'), '\n')
  const [first = '', ...rest] = message.split('\n').filter((l) => l.trim() !== '')
  const what = entry.outcome === 'lost' ? 'lost' : 'failed'
  const tail = rest.slice(-maxLines).map((l) => `    ${l}`)
  return `${paint(color, 'red', '✗')} ${neutralise(entry.node)} (${neutralise(entry.group)}) ${what}: ${first}${tail.length > 0 ? `\n${tail.join('\n')}` : ''}\n`
}

const OUTCOME_WORDS: Record<NodeOutcome, string> = {
  ok: 'ok',
  failed: 'failed',
  lost: 'failed (lost)',
  running: 'running',
  waiting: 'waiting',
  'timed-out': 'not started (timeout)',
  skipped: 'not started (stopped)',
}

/** One row per targeted node: NODE GROUP RESULT STARTED TOOK MESSAGE. */
export function formatDeploySummary(progress: DeployProgress): string {
  const rows = progress.nodes.map((entry) => {
    const s = entry.status
    const took = s?.startedAt && s.finishedAt ? formatDuration(Date.parse(s.finishedAt) - Date.parse(s.startedAt)) : ''
    const message = (s?.message ?? '').split('\n').find((l) => l.trim() !== '') ?? ''
    return [entry.node, entry.group, OUTCOME_WORDS[entry.outcome], s?.startedAt ?? '', took, message.slice(0, 120)]
  })
  return formatTable(['NODE', 'GROUP', 'RESULT', 'STARTED', 'TOOK', 'MESSAGE'], rows)
}

export function formatStop(stop: DeployStop): string {
  const why = stop.reason === 'cancelled' ? 'cancelled' : stop.reason === 'timeout' ? 'timed out' : 'too many failures (--max-errors)'
  return `no further node starts: ${why}, at ${stop.at} by ${neutralise(stop.by)}`
}

export interface ProgressRendererOptions {
  write(text: string): void
  /** A terminal: redraw one line in place. Otherwise a plain line when the counts change, or every plainEveryMs. */
  tty: boolean
  color: boolean
  plainEveryMs?: number
  nowMs?: () => number
}

/** Draws progress on stderr; failure lines and notes print above the live line. */
export function progressRenderer(options: ProgressRendererOptions): {update(update: FollowUpdate): void; note(text: string): void; end(): void} {
  const every = options.plainEveryMs ?? 10_000
  const nowMs = options.nowMs ?? Date.now
  let drawn = false
  let lastCounts = ''
  let lastAt = 0
  const clear = (): void => {
    if (options.tty && drawn) options.write('\r\u001B[2K')
    drawn = false
  }
  let last = ''
  return {
    update(update) {
      const line = formatProgressLine(update, options.color)
      if (options.tty) {
        // Redrawn only when it reads differently (the clock moves once a second).
        if (line === last && drawn) return
        last = line
        options.write(`\r\u001B[2K${last}`)
        drawn = true
        return
      }
      const counts = JSON.stringify(update.progress.counts) + (update.stop?.reason ?? '')
      if (counts !== lastCounts || nowMs() - lastAt >= every) {
        options.write(`${formatProgressLine(update, false)}\n`)
        lastCounts = counts
        lastAt = nowMs()
      }
    },
    note(text) {
      clear()
      options.write(text.endsWith('\n') ? text : `${text}\n`)
      if (options.tty && last !== '') {
        options.write(last)
        drawn = true
      }
    },
    end() {
      if (options.tty && drawn) options.write('\n')
      drawn = false
    },
  }
}

/** Follow handlers drawing on a stream (stderr): in place on a terminal, plain lines otherwise or with --json. */
export function streamFollowHandlers(stream: NodeJS.WriteStream, options: {json: boolean; color: boolean}): {handlers: FollowHandlers; renderer: ReturnType<typeof progressRenderer>} {
  const renderer = progressRenderer({write: (text) => stream.write(text), tty: Boolean(stream.isTTY) && !options.json, color: options.color})
  return {
    renderer,
    handlers: {
      update: (update) => renderer.update(update),
      failure: (entry) => renderer.note(formatFailure(entry, options.color)),
      stopped: (stop) => renderer.note(formatStop(stop)),
      warning: (text) => renderer.note(paint(options.color, 'yellow', `Warning: ${neutralise(text)}`)),
    },
  }
}

/** Which deploy this is: id, groups, slots, who asked and when, the deadline, and a stop if any. */
export function formatDeployHeader(request: DeployRequest, stop: DeployStop | undefined): string {
  const nodes = request.groups.reduce((sum, g) => sum + (request.targets[g]?.length ?? 0), 0)
  const lines = [
    `Deploy ${request.id}: ${request.groups.map((g) => neutralise(g)).join(', ')}; ${nodes} node${nodes === 1 ? '' : 's'}, ${request.n} at a time, --max-errors ${request.maxErrors}`,
    `  requested ${request.requestedAt} by ${neutralise(request.requestedBy)}; deadline ${request.deadline}`,
  ]
  if (stop) lines.push(`  ${formatStop(stop)}`)
  return `${lines.join('\n')}\n`
}

export function formatCancel(result: DeployCancelData): string {
  if (result.finished) {
    const counts = Object.entries(result.counts ?? {}).filter(([, n]) => n > 0).map(([outcome, n]) => `${outcome} ${n}`).join(' · ')
    const stopped = result.stop ? `; ${formatStop(result.stop)}` : ''
    return `Deploy ${result.id} has finished (${counts || 'no nodes'}${stopped}): nothing to cancel, nothing written.\n`
  }
  const lines = [
    result.written || !result.stop ? `Deploy ${result.id} cancelled: no further node starts.` : `Deploy ${result.id} had stopped already (${formatStop(result.stop)}); nothing changed.`,
    result.running.length > 0 ? `Still running (they finish their run): ${result.running.map((n) => neutralise(n)).join(', ')}` : 'Nothing is running.',
  ]
  if (result.written && result.notStarted.length > 0) lines.push(`Will not start: ${result.notStarted.map((n) => neutralise(n)).join(', ')}`)
  return `${lines.join('\n')}\n`
}

// --nodes and --env too: with environments, they decide the registry project the deploy lives in.
const REGISTRY_FLAG_NAMES = ['etcd', 'project', 'etcd-ca', 'etcd-cert', 'etcd-key', 'etcd-user', 'etcd-password-file', 'nodes', 'env'] as const
const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)

/**
 * "detached; follow again with: muster deploy:status ID --follow --etcd URL …": with the registry
 * flags this run was given (none is a secret: a password never goes in a flag), so the command
 * works as printed; settings from the environment stay there.
 */
export function formatDetached(id: string, flags: Partial<Record<(typeof REGISTRY_FLAG_NAMES)[number], string | undefined>>): string {
  const given = REGISTRY_FLAG_NAMES.flatMap((name) => (flags[name] === undefined ? [] : [`--${name}`, shellWord(neutralise(flags[name] as string))]))
  return `detached; follow again with: muster deploy:status ${id} --follow${given.length > 0 ? ` ${given.join(' ')}` : ''}\n`
}
