// Rendering of a rollout (src/ui/deploy.ts) and the pure numbers behind it (default timeout, ETA).
import {expect} from 'chai'

import {defaultTimeout} from '../../src/actions/deploy.js'
import {DeployKeys, deployElapsedMs, estimateRemainingMs} from '../../src/actions/deploy-follow.js'
import {type DeployNodeStatus, deployProgress, type DeployRequest} from '../../src/registry/deploys.js'
import {formatDeployPlan, formatDeploySummary, formatDetached, formatDuration, formatFailure, formatProgressLine, progressRenderer} from '../../src/ui/deploy.js'

const request: DeployRequest = {
  id: '20261125T190000Z-abcdef',
  groups: ['web'],
  n: 2,
  maxErrors: 0,
  releases: {web: {digest: 'a'.repeat(64), url: `s3://bkt/muster/p/releases/web/${'a'.repeat(64)}.json`, sha256: 'a'.repeat(64)}},
  targets: {web: ['web-1', 'web-2', 'web-3', 'web-4', 'web-5']},
  requestedAt: '2026-11-25T19:00:00.000Z',
  requestedBy: 'ops@laptop',
  deadline: '2026-11-25T19:10:00.000Z',
}

const status = (node: string, state: DeployNodeStatus['state'], extra: Partial<DeployNodeStatus> = {}): DeployNodeStatus => ({node, group: 'web', state, startedAt: null, finishedAt: null, message: null, lease: null, ...extra})

function progress(now = '2026-11-25T19:01:00.000Z') {
  const statuses = new Map<string, DeployNodeStatus>([
    ['web-1', status('web-1', 'ok', {startedAt: '2026-11-25T19:00:00.000Z', finishedAt: '2026-11-25T19:00:20.000Z'})],
    ['web-2', status('web-2', 'failed', {startedAt: '2026-11-25T19:00:00.000Z', finishedAt: '2026-11-25T19:00:40.000Z', message: 'provision exited with 3\nline a\nline b\n\u001b[31mred'})],
    ['web-3', status('web-3', 'running', {startedAt: '2026-11-25T19:00:40.000Z', lease: '7'})],
  ])
  return deployProgress({request, statuses, slotLeases: new Set(['7']), stop: undefined}, new Date(now))
}

describe('deploy rendering (src/ui/deploy.ts)', () => {
  it('formats durations as m:ss and h:mm:ss', () => {
    expect(formatDuration(0)).to.equal('0:00')
    expect(formatDuration(75_000)).to.equal('1:15')
    expect(formatDuration(3_725_000)).to.equal('1:02:05')
  })

  it('draws the progress line: ok, failed, running, waiting of total, elapsed, ETA', () => {
    const p = progress()
    expect(formatProgressLine({progress: p, elapsedMs: 42_000, etaMs: 20_000, stop: undefined})).to.equal('ok 1 · failed 1 · running 1 · waiting 2 of 5 · 0:42 elapsed · ETA 0:20')
    expect(formatProgressLine({progress: p, elapsedMs: 1000, etaMs: undefined, stop: undefined})).to.contain('ETA –')
    const stopped = deployProgress({request, statuses: new Map(), slotLeases: new Set(), stop: {reason: 'cancelled', at: '2026-11-25T19:00:05.000Z', by: 'x'}}, new Date('2026-11-25T19:00:06Z'))
    expect(formatProgressLine({progress: stopped, elapsedMs: 6000, etaMs: undefined, stop: {reason: 'cancelled', at: 'x', by: 'y'}})).to.equal('ok 0 · failed 0 · running 0 · waiting 0 of 5 · not started 5 · 0:06 elapsed · stopped: cancelled')
  })

  it('writes one failure line with the log\'s last lines, control characters neutralised', () => {
    const entry = progress().nodes.find((e) => e.node === 'web-2')
    if (!entry) throw new Error('no web-2')
    expect(formatFailure(entry)).to.equal('✗ web-2 (web) failed: provision exited with 3\n    line a\n    line b\n    \\x1b[31mred\n')
    expect(formatFailure(entry, false, 1)).to.equal('✗ web-2 (web) failed: provision exited with 3\n    \\x1b[31mred\n')
    const lost = deployProgress({request, statuses: new Map([['web-1', status('web-1', 'running', {lease: '9'})]]), slotLeases: new Set(), stop: undefined}, new Date('2026-11-25T19:01:00Z')).nodes[0]
    expect(lost && formatFailure(lost)).to.equal('✗ web-1 (web) lost: its agent stopped answering mid-run (its lease expired)\n')
  })

  it('shows the role diff of the plan with its header tabs as tabs, other control characters neutralised', () => {
    const diff = '--- a/roles/web.json\tlast release\n+++ b/roles/web.json\tthis release\n@@ -1,1 +1,1 @@\n-    "v": 1\n+    "v": "\u001b[2J"'
    const plan = {
      id: request.id, project: 'p', bucket: 'bkt', n: 1, maxErrors: 0, timeout: 60, timeoutSource: '--timeout', cookbooks: null, totalTargets: 1, unknownGroups: [],
      groups: [{group: 'web', targets: ['web-1'], previous: {digest: 'b'.repeat(64), url: 'u', createdAt: null}, previousError: null, roleDiff: diff, cookbooksChanged: false, release: request.releases.web as DeployRequest['releases'][string], unchanged: false, batchSeconds: 60}],
    }
    const text = formatDeployPlan(plan, false)
    expect(text).to.contain('    --- a/roles/web.json\tlast release\n')
    expect(text).to.contain('    +++ b/roles/web.json\tthis release\n')
    expect(text).to.not.contain('\\x09')
    expect(text).to.contain('+    "v": "\\x1b[2J"')
  })

  it('says how to follow again with the registry flags this run was given, quoted for a shell', () => {
    expect(formatDetached(request.id, {})).to.equal(`detached; follow again with: muster deploy:status ${request.id} --follow\n`)
    expect(formatDetached(request.id, {etcd: 'https://10.0.0.5:2379', 'etcd-ca': '/etc/muster/ca dir/ca.pem', 'etcd-user': 'muster-p-operator', project: undefined}))
      .to.equal(`detached; follow again with: muster deploy:status ${request.id} --follow --etcd https://10.0.0.5:2379 --etcd-ca '/etc/muster/ca dir/ca.pem' --etcd-user muster-p-operator\n`)
  })

  it('counts a finished deploy\'s elapsed time to its last finish or stop, a running one\'s to now', () => {
    const later = new Date('2026-11-25T20:00:00.000Z')
    const running = progress('2026-11-25T19:01:00.000Z')
    expect(deployElapsedMs(running, request, undefined, new Date('2026-11-25T19:01:00.000Z'))).to.equal(60_000)
    const statuses = new Map<string, DeployNodeStatus>(['web-1', 'web-2', 'web-3', 'web-4', 'web-5'].map((n, i) => [n, status(n, 'ok', {startedAt: '2026-11-25T19:00:00.000Z', finishedAt: `2026-11-25T19:00:${10 + i}.000Z`})]))
    const done = deployProgress({request, statuses, slotLeases: new Set(), stop: undefined}, later)
    expect(deployElapsedMs(done, request, undefined, later)).to.equal(14_000)
    // Cancelled after every node had finished: the cancel is not the end.
    expect(deployElapsedMs(done, request, {reason: 'cancelled', at: '2026-11-25T19:05:00.000Z', by: 'ops'}, later)).to.equal(14_000)
    const stop = {reason: 'max-errors' as const, at: '2026-11-25T19:00:30.000Z', by: 'web-2'}
    const stopped = deployProgress({request, statuses: new Map([['web-1', status('web-1', 'failed', {startedAt: '2026-11-25T19:00:00.000Z', finishedAt: '2026-11-25T19:00:20.000Z'})]]), slotLeases: new Set(), stop}, later)
    expect(stopped.done).to.equal(true)
    expect(deployElapsedMs(stopped, request, stop, later)).to.equal(30_000)
    const never = deployProgress({request, statuses: new Map(), slotLeases: new Set(), stop: undefined}, later)
    expect(deployElapsedMs(never, request, undefined, later)).to.equal(600_000)
  })

  it('names every targeted node in the summary table', () => {
    const table = formatDeploySummary(progress())
    const lines = table.trimEnd().split('\n')
    expect(lines[0]).to.match(/^NODE\s+GROUP\s+RESULT\s+STARTED\s+TOOK\s+MESSAGE$/)
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3).join(' '))).to.deep.equal(['web-1 web ok', 'web-2 web failed', 'web-3 web running', 'web-4 web waiting', 'web-5 web waiting'])
    expect(lines[2]).to.contain('0:40').and.contain('provision exited with 3')
  })

  it('redraws in place on a terminal; elsewhere prints a line when the counts change or the interval passes', () => {
    const p = progress()
    const tty: string[] = []
    const r = progressRenderer({write: (t) => tty.push(t), tty: true, color: false})
    r.update({progress: p, request, stop: undefined, elapsedMs: 1000, etaMs: undefined})
    r.note('✗ failure\n')
    r.end()
    expect(tty.join('')).to.equal('\r\u001B[2Kok 1 · failed 1 · running 1 · waiting 2 of 5 · 0:01 elapsed · ETA –\r\u001B[2K✗ failure\nok 1 · failed 1 · running 1 · waiting 2 of 5 · 0:01 elapsed · ETA –\n')
    const plain: string[] = []
    let clock = 0
    const q = progressRenderer({write: (t) => plain.push(t), tty: false, color: false, plainEveryMs: 10_000, nowMs: () => clock})
    q.update({progress: p, request, stop: undefined, elapsedMs: 1000, etaMs: undefined})
    clock = 5000
    q.update({progress: p, request, stop: undefined, elapsedMs: 5000, etaMs: undefined})
    clock = 11_000
    q.update({progress: p, request, stop: undefined, elapsedMs: 11_000, etaMs: undefined})
    expect(plain).to.have.length(2)
    expect(plain.every((l) => l.endsWith('\n') && !l.includes('\r'))).to.equal(true)
  })
})

describe('deploy numbers', () => {
  it('defaults the timeout to the slowest autoscale.timeout times the batches', () => {
    expect(defaultTimeout([{batchSeconds: 120, targets: ['a', 'b', 'c', 'd', 'e', 'f']}], 2)).to.deep.equal({seconds: 360, formula: '120 s (autoscale.timeout) × 3 batches (ceil(6 nodes / 2))'})
    expect(defaultTimeout([{batchSeconds: 120, targets: ['a']}, {batchSeconds: 300, targets: ['b', 'c']}], 10).seconds).to.equal(300)
  })

  it('estimates the time left from the mean run and the batches left', () => {
    const p = progress()
    // mean of 20 s and 40 s = 30 s; 3 nodes left (1 running, 2 waiting) at n=2: 2 batches
    expect(estimateRemainingMs(p, 2)).to.equal(60_000)
    const none = deployProgress({request, statuses: new Map(), slotLeases: new Set(), stop: undefined}, new Date('2026-11-25T19:00:01Z'))
    expect(estimateRemainingMs(none, 2)).to.equal(undefined)
  })

  it('counts the ETA down between finishes, from the last one, never below zero', () => {
    const p = progress()
    // The last finish was web-2's at 19:00:40: 60 s left then.
    expect(estimateRemainingMs(p, 2, new Date('2026-11-25T19:00:40.000Z'))).to.equal(60_000)
    expect(estimateRemainingMs(p, 2, new Date('2026-11-25T19:00:50.000Z'))).to.equal(50_000)
    expect(estimateRemainingMs(p, 2, new Date('2026-11-25T19:01:30.000Z'))).to.equal(10_000)
    expect(estimateRemainingMs(p, 2, new Date('2026-11-25T19:05:00.000Z'))).to.equal(0)
    // A clock behind the nodes' takes nothing off.
    expect(estimateRemainingMs(p, 2, new Date('2026-11-25T19:00:30.000Z'))).to.equal(60_000)
    const line = (at: string) => formatProgressLine({progress: p, elapsedMs: Date.parse(at) - Date.parse(request.requestedAt), etaMs: estimateRemainingMs(p, 2, new Date(at)), stop: undefined})
    expect(line('2026-11-25T19:00:45.000Z')).to.contain('ETA 0:55')
    expect(line('2026-11-25T19:00:55.000Z')).to.contain('ETA 0:45')
  })
})

describe('a deploy\'s keys as the follower reads them (DeployKeys)', () => {
  const project = 'p'
  const id = request.id
  const rollout = `/muster/${project}/rollout/${id}/`

  it('takes the request, statuses, slot leases and the stop; ignores forged or foreign keys', () => {
    const keys = new DeployKeys(project, id)
    keys.apply([
      {type: 'put', key: `/muster/${project}/deploys/${id}`, value: JSON.stringify(request), lease: '0'},
      {type: 'put', key: `${rollout}nodes/web-1`, value: JSON.stringify(status('web-1', 'running', {lease: '42'})), lease: '0'},
      {type: 'put', key: `${rollout}nodes/web-2`, value: '{"forged":true}', lease: '0'},
      {type: 'put', key: `${rollout}nodes/web-3`, value: JSON.stringify(status('web-4', 'ok')), lease: '0'},
      {type: 'put', key: `${rollout}slots/0`, value: 'web-1', lease: '42'},
      {type: 'put', key: `${rollout}slots/1`, value: 'x', lease: '0'},
      {type: 'put', key: `/muster/${project}/rollout/20261125T190000Z-ffffff/nodes/web-5`, value: JSON.stringify(status('web-5', 'ok')), lease: '0'},
    ], 10)
    const state = keys.state()
    expect(state?.request.id).to.equal(id)
    expect([...(state?.statuses.keys() ?? [])]).to.deep.equal(['web-1'])
    expect([...(state?.slotLeases ?? [])]).to.deep.equal(['42'])
    expect(deployProgress(state as NonNullable<typeof state>, new Date('2026-11-25T19:01:00Z')).nodes[0]?.outcome).to.equal('running')
    // The slot goes (the agent died, its lease expired): the node reads as lost.
    keys.apply([{type: 'delete', key: `${rollout}slots/0`, value: ''}], 11)
    expect(deployProgress(keys.state() as NonNullable<typeof state>, new Date('2026-11-25T19:01:00Z')).nodes[0]?.outcome).to.equal('lost')
    keys.apply([{type: 'put', key: `${rollout}stop`, value: JSON.stringify({reason: 'cancelled', at: '2026-11-25T19:01:00.000Z', by: 'me'}), lease: '0'}], 12)
    expect(keys.stop?.reason).to.equal('cancelled')
    expect(keys.revision).to.equal(12)
  })

  it('has no state before the request', () => {
    const keys = new DeployKeys(project, id)
    keys.apply([{type: 'put', key: `${rollout}nodes/web-1`, value: JSON.stringify(status('web-1', 'ok')), lease: '0'}], 3)
    expect(keys.state()).to.equal(undefined)
  })
})
