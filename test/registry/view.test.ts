import {expect} from 'chai'

import {nodeKey, parseKey, retireKey, serviceKey} from '../../src/registry/keys.js'
import {parseNodeRecord, parseServiceRecord} from '../../src/registry/records.js'
import {RegistryView} from '../../src/registry/view.js'

const svc = (node: string, extra: Record<string, unknown> = {}): string => JSON.stringify({node, group: 'g', address: `10.0.0.${node.length}`, since: '2026-01-01T00:00:00Z', ...extra})
const nodeRec = (node: string, revision: number, dependsOn: string[] = ['api']): string =>
  JSON.stringify({node, group: 'g', address: 'a', services: [], dependsOn, since: '2026-01-01T00:00:00Z', provision: {state: 'idle', ok: true, reason: 'boot', startedAt: null, finishedAt: null, revision, message: null}})

describe('registry keys and records', () => {
  it('parses only keys under the project with safe segments', () => {
    expect(parseKey('p', serviceKey('p', 'api', 'n1'))).to.deep.equal({kind: 'service', service: 'api', node: 'n1'})
    expect(parseKey('p', nodeKey('p', 'i-0abc'))).to.deep.equal({kind: 'node', node: 'i-0abc'})
    expect(parseKey('p', '/muster/other/services/api/n1')).to.equal(undefined)
    expect(parseKey('p', '/muster/p/services/api/n1/extra')).to.equal(undefined)
    expect(parseKey('p', '/muster/p/services/a pi/n1')).to.equal(undefined)
    expect(parseKey('p', '/muster/p/deploys/1')).to.equal(undefined)
  })

  it('rejects a service record that names another node than its key, or has a bad port', () => {
    expect(parseServiceRecord(svc('n1', {port: 80}), 'n1')).to.deep.equal({node: 'n1', group: 'g', address: '10.0.0.2', port: 80, since: '2026-01-01T00:00:00Z'})
    expect(parseServiceRecord(svc('n2'), 'n1')).to.equal(undefined)
    expect(parseServiceRecord(svc('n1', {port: 70_000}), 'n1')).to.equal(undefined)
    expect(parseServiceRecord(svc('n1', {port: '80'}), 'n1')).to.equal(undefined)
    expect(parseServiceRecord('not json', 'n1')).to.equal(undefined)
    expect(parseServiceRecord('[]', 'n1')).to.equal(undefined)
  })

  it('rejects a node record with a malformed provision', () => {
    expect(parseNodeRecord(nodeRec('n1', 5), 'n1')?.provision.revision).to.equal(5)
    const bad = JSON.parse(nodeRec('n1', 5)) as {provision: {revision: unknown}}
    bad.provision.revision = -1
    expect(parseNodeRecord(JSON.stringify(bad), 'n1')).to.equal(undefined)
    expect(parseNodeRecord(nodeRec('n1', 5), 'n2')).to.equal(undefined)
  })
})

describe('RegistryView', () => {
  it('ignores an operator\'s retire key without counting it as rejected, and a node record\'s retired time is kept', () => {
    const view = new RegistryView('p')
    const retired = {...(JSON.parse(nodeRec('n1', 1)) as Record<string, unknown>), retired: '2026-01-01T00:00:00.000Z'}
    const change = view.apply([
      {type: 'put', key: retireKey('p', 'n1'), value: '{}'},
      {type: 'put', key: nodeKey('p', 'n1'), value: JSON.stringify(retired)},
    ], 3)
    expect(change.rejected).to.equal(0)
    expect(view.nodes.get('n1')?.retired).to.equal('2026-01-01T00:00:00.000Z')
  })

  it('reports which services and nodes an event batch changed, ignoring forged records', () => {
    const view = new RegistryView('p')
    const change = view.apply(
      [
        {type: 'put', key: serviceKey('p', 'api', 'n1'), value: svc('n1', {port: 80})},
        {type: 'put', key: serviceKey('p', 'api', 'n2'), value: svc('evil')},
        {type: 'put', key: nodeKey('p', 'n3'), value: nodeRec('n3', 1)},
      ],
      7,
    )
    expect([...change.services]).to.deep.equal(['api'])
    expect([...change.nodes]).to.deep.equal(['n3'])
    expect(change.rejected).to.equal(1)
    expect(view.where('api').map((r) => r.node)).to.deep.equal(['n1'])
    expect(view.revision).to.equal(7)
  })

  it('does not call a re-put with the same address and port a change', () => {
    const view = new RegistryView('p')
    view.apply([{type: 'put', key: serviceKey('p', 'api', 'n1'), value: svc('n1', {port: 80})}], 1)
    const again = view.apply([{type: 'put', key: serviceKey('p', 'api', 'n1'), value: svc('n1', {port: 80, since: '2026-01-02T00:00:00Z'})}], 2)
    expect(again.services.size).to.equal(0)
    const moved = view.apply([{type: 'put', key: serviceKey('p', 'api', 'n1'), value: svc('n1', {port: 81})}], 3)
    expect([...moved.services]).to.deep.equal(['api'])
  })

  it('diffs a fresh snapshot against the last view (what a compacted watch missed)', () => {
    const view = new RegistryView('p')
    view.apply(
      [
        {type: 'put', key: serviceKey('p', 'api', 'n1'), value: svc('n1')},
        {type: 'put', key: serviceKey('p', 'db', 'n2'), value: svc('n2')},
      ],
      3,
    )
    const change = view.replace(
      [
        {type: 'put', key: serviceKey('p', 'db', 'n2'), value: svc('n2')},
        {type: 'put', key: serviceKey('p', 'web', 'n4'), value: svc('n4')},
      ],
      10,
    )
    expect([...change.services].sort()).to.deep.equal(['api', 'web'])
    expect(view.where('api')).to.deep.equal([])
    expect(view.revision).to.equal(10)
  })

  it('ignores records without a lease, and addresses that are not an IP or a host name', () => {
    const view = new RegistryView('p')
    const change = view.apply(
      [
        {type: 'put', key: serviceKey('p', 'api', 'ghost'), value: svc('ghost'), lease: '0'},
        {type: 'put', key: nodeKey('p', 'ghost'), value: nodeRec('ghost', 0), lease: '0'},
        {type: 'put', key: serviceKey('p', 'api', 'evil'), value: svc('evil', {address: '10.0.0.1\n  server pwn 6.6.6.6:80'}), lease: '7'},
        {type: 'put', key: serviceKey('p', 'api', 'v6'), value: svc('v6', {address: 'fd00::1'}), lease: '7'},
        {type: 'put', key: serviceKey('p', 'api', 'dns'), value: svc('dns', {address: 'api-1.internal.example'}), lease: '7'},
        {type: 'put', key: serviceKey('p', 'api', '..'), value: svc('..'), lease: '7'},
      ],
      3,
    )
    expect(view.where('api').map((r) => r.node)).to.deep.equal(['dns', 'v6'])
    expect(view.nodes.size).to.equal(0)
    expect(change.rejected).to.equal(4)
  })
})
