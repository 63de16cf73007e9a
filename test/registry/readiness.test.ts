// The pure decisions of a blue-green update: which new instances have registered their group's
// services, and which old nodes have retired (no service left, record gone or saying retired).
import {expect} from 'chai'

import type {NodeRow, ServiceRow} from '../../src/registry/read.js'
import {describeShortfalls, newInstancesReady, retirementOf} from '../../src/registry/readiness.js'
import {initialProvision} from '../../src/registry/records.js'

const node = (id: string, group = 'web', extra: Partial<NodeRow> = {}): NodeRow => ({node: id, group, address: '10.0.0.1', services: [], dependsOn: [], provision: initialProvision(), since: '2026-01-01T00:00:00.000Z', ...extra})
const service = (name: string, id: string, group = 'web'): ServiceRow => ({service: name, node: id, group, address: '10.0.0.1', port: 80, since: '2026-01-01T00:00:00.000Z'})

describe('blue-green readiness (pure)', function () {
  describe('newInstancesReady', function () {
    it('is done only when every instance has a record of the group and every service', function () {
      const read = {nodes: [node('i-1'), node('i-2')], services: [service('api', 'i-1'), service('jobs', 'i-1'), service('api', 'i-2')]}
      const state = newInstancesReady(['i-2', 'i-1'], 'web', ['api', 'jobs'], read)
      expect(state).to.deep.equal({ready: ['i-1'], waiting: [{node: 'i-2', reason: 'services missing', missing: ['jobs']}], done: false})
      const all = newInstancesReady(['i-1', 'i-2'], 'web', ['api', 'jobs'], {...read, services: [...read.services, service('jobs', 'i-2')]})
      expect(all).to.deep.equal({ready: ['i-1', 'i-2'], waiting: [], done: true})
    })

    it('an instance without a node record is not registered; one of another group is not counted', function () {
      const read = {nodes: [node('i-2', 'db')], services: [service('api', 'i-2', 'db')]}
      const state = newInstancesReady(['i-1', 'i-2'], 'web', ['api'], read)
      expect(state.waiting).to.deep.equal([
        {node: 'i-1', reason: 'not registered', missing: ['api']},
        {node: 'i-2', reason: 'other group', missing: ['api']},
      ])
      expect(describeShortfalls(state.waiting)).to.equal('i-1 (not registered: api); i-2 (other group: api)')
    })

    it('a service registered with another group in its record does not count for this group', function () {
      const state = newInstancesReady(['i-1'], 'web', ['api'], {nodes: [node('i-1')], services: [service('api', 'i-1', 'db')]})
      expect(state.waiting).to.deep.equal([{node: 'i-1', reason: 'services missing', missing: ['api']}])
    })

    it('no instance is never done; a group without services is ready once its nodes are registered', function () {
      expect(newInstancesReady([], 'web', ['api'], {nodes: [], services: []}).done).to.equal(false)
      expect(newInstancesReady(['i-1'], 'web', [], {nodes: [node('i-1')], services: []})).to.deep.equal({ready: ['i-1'], waiting: [], done: true})
    })
  })

  describe('retirementOf', function () {
    it('a node is retired once it holds no service and its record is gone or says retired', function () {
      const read = {
        nodes: [node('i-old1', 'web', {retired: '2026-01-01T00:01:00.000Z'}), node('i-old2'), node('i-old3')],
        services: [service('api', 'i-old2')],
      }
      expect(retirementOf(['i-old4', 'i-old3', 'i-old2', 'i-old1'], read)).to.deep.equal({
        retired: ['i-old1', 'i-old4'],
        holding: [{node: 'i-old2', services: ['api']}, {node: 'i-old3', services: []}],
        done: false,
      })
      expect(retirementOf(['i-old1'], read).done).to.equal(true)
    })
  })
})
