// The pure parts of muster status: one group's picture from a snapshot of registry keys (which any
// node can write, so forged and malformed keys must not count) and the text it is shown as.
import {expect} from 'chai'

import {groupRegistryStatus, type GroupStatus, NO_REGISTRY, type StatusResult} from '../../src/actions/status.js'
import type {Snapshot} from '../../src/registry/store.js'
import {formatStatus} from '../../src/ui/status.js'

const P = '/muster/shop/'
const DIGEST = 'b'.repeat(64)
const NOW = new Date('2026-11-25T19:30:00Z')

const node = (name: string, group: string, ok: boolean | null): string =>
  JSON.stringify({node: name, group, address: '10.0.0.9', services: [], dependsOn: [], since: '2026-11-25T18:00:00Z',
    provision: {state: ok === false ? 'failed' : ok ? 'idle' : 'pending', ok, reason: ok === null ? null : 'boot', startedAt: null, finishedAt: null, revision: 0, message: null}})
const request = (id: string, groups: string[]): string =>
  JSON.stringify({id, groups, n: 1, maxErrors: 0, releases: Object.fromEntries(groups.map((g) => [g, {digest: DIGEST, url: `s3://rel/x/${g}.json`, sha256: DIGEST}])),
    targets: Object.fromEntries(groups.map((g) => [g, [`${g}-1`]])), requestedAt: '2026-11-25T19:00:00Z', requestedBy: 'ops', deadline: '2026-11-25T21:00:00Z'})

function snapshot(events: Array<[string, string, string?]>): Snapshot {
  return {revision: 9, events: events.map(([key, value, lease]) => ({type: 'put' as const, key: `${P}${key}`, value, lease: lease ?? '0'}))}
}

describe('muster status: a group in the registry', () => {
  it('counts live nodes of the group on a lease, healthy when their last provision succeeded', () => {
    const status = groupRegistryStatus('shop', snapshot([
      ['nodes/web-1', node('web-1', 'web', true), '7'],
      ['nodes/web-2', node('web-2', 'web', false), '7'],
      ['nodes/web-3', node('web-3', 'web', null), '7'],
      ['nodes/api-1', node('api-1', 'api', true), '7'],
      // Forged: no lease, or a record naming another node than its key.
      ['nodes/web-4', node('web-4', 'web', true)],
      ['nodes/web-5', node('web-6', 'web', true), '7'],
    ]), 'web', NOW)
    expect(status).to.deep.include({registered: 3, healthy: 1, release: null, lastDeploy: null})
  })

  it('takes the release only when it parses, and the newest deploy that names the group', () => {
    const status = groupRegistryStatus('shop', snapshot([
      ['groups/web/release', JSON.stringify({digest: DIGEST, url: 's3://rel/web.json', sha256: DIGEST})],
      ['groups/api/release', '{"digest": "nope"}'],
      ['deploys/20261125T100000Z-000001', request('20261125T100000Z-000001', ['web'])],
      ['deploys/20261125T120000Z-000002', request('20261125T120000Z-000002', ['api'])],
      // Malformed: its id does not match its key, so it is not a deploy of web.
      ['deploys/20261125T130000Z-000003', request('20261125T999999Z-000003', ['web'])],
      ['rollout/20261125T100000Z-000001/nodes/web-1', JSON.stringify({node: 'web-1', group: 'web', state: 'ok', startedAt: null, finishedAt: null, message: null, lease: null})],
    ]), 'web', NOW)
    expect(status.release).to.equal(DIGEST)
    expect(status.lastDeploy).to.deep.include({id: '20261125T100000Z-000001', done: true, ok: true, stopped: null})
    expect(status.lastDeploy?.counts.ok).to.equal(1)
    const api = groupRegistryStatus('shop', snapshot([['groups/api/release', '{"digest": "nope"}']]), 'api', NOW)
    expect(api.release).to.equal(null)
  })
})

describe('muster status: text', () => {
  const group = (over: Partial<GroupStatus>): GroupStatus => ({
    group: 'web', region: 'us-east-1', stack: true, stackProblem: null, stackAmi: 'ami-1',
    images: {newest: {id: 'ami-1', created: '2026-11-25T18:00:00Z'}, count: 2, keep: 5, legacy: 0}, asgs: [], registry: {unknown: NO_REGISTRY}, ...over,
  })
  const result = (groups: GroupStatus[], orphans: string[] = []): StatusResult => ({backend: 'x', registry: null, groups, orphans, orphansUnknown: null, nodesFile: 'nodes.yaml'})

  it('says unknown for the registry columns when none is given', () => {
    const text = formatStatus(result([group({})]))
    expect(text).to.include('web (us-east-1)\n')
    expect(text).to.match(/AMI +ami-1 \(newest of 2, keeps 5\)/)
    expect(text).to.match(/ASG +none/)
    expect(text).to.match(/NODES +unknown: no registry given/)
    expect(text).to.match(/LAST DEPLOY +unknown/)
  })

  it('names a stack that could not be read, a group with no stack, the orphans, and neutralises what AWS or nodes wrote', () => {
    const text = formatStatus(result([
      group({stackProblem: 'the stack of web keeps its secrets with a passphrase, and none is set', asgs: [{name: 'web\u001b[31m', desired: 2, inService: 1, managed: true}]}),
      group({group: 'api', stack: false, stackAmi: null, images: {newest: null, count: 0, keep: null, legacy: 2}}),
    ], ['old']))
    expect(text).to.match(/STACK +unknown: the stack of web keeps its secrets/)
    expect(text).not.to.include('\u001b')
    expect(text).to.match(/ASG +web.*: 2 desired, 1 in service\n/)
    expect(text).to.include('api (us-east-1, no stack yet)')
    expect(text).to.match(/AMI +none baked; 2 legacy images \(muster packer:adopt api\)/)
    expect(text).to.include('Stacks with no group in nodes.yaml (orphans): old')
  })
})
